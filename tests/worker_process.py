"""Start the portal's real django-q2 clusters (``manage.py workers``) and stop exactly that process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def running_worker(
    *, log_path: Path, env: dict[str, str] | None = None, command: tuple[str, ...] = ("workers",)
) -> Iterator[subprocess.Popen]:
    """``manage.py workers`` (every cluster: control, builds, downloads, imports), or another ``command``."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its forked workers share this new process group
        )
        try:
            yield process
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    # ``workers`` passes SIGTERM to each cluster, which stops its own workers; whatever they leave
    # behind is in the group we created for it, so that group (and only it) is killed afterwards.
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def database_url() -> str:
    """This test process's database (the test database, once a test has it), for a worker to use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(**overrides: str) -> dict[str, str]:
    """The environment of a worker that serves this test process: its database, queues, folders and ports.

    The deployment may have been renamed at run time (tests that own their libvirt names do), but the
    queues were named at start-up: the worker is told both, so it takes what this process puts on them.
    Tasks go through the ORM broker (no Redis), as the demo's default does.
    """
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "PORTAL_TASKS_SYNC": "0",
        "PORTAL_DEPLOYMENT": settings.DEPLOYMENT_NAME,
        "PORTAL_TASK_QUEUE": settings.TASK_QUEUE,
        "PORTAL_VAR_DIR": str(settings.VAR_DIR),
        "PORTAL_IMAGE_CACHE": str(settings.IMAGE_CACHE_DIR),
        # A port moved at start (taken meanwhile) stays in this xdist worker's range.
        "PORTAL_PORT_MIN": str(settings.PUBLISH_PORT_RANGE[0]),
        "PORTAL_PORT_MAX": str(settings.PUBLISH_PORT_RANGE[1]),
        **overrides,
    }
    env.pop("REDIS_URL", None)
    return env

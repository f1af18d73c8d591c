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
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"

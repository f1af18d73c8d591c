"""The demo script stops completely however it is stopped: here, a TERM to its whole process group.

That is what a service manager or `kill -- -PGID` sends; it used to leave the django-q2 cluster
hanging with zombie workers and the script waiting on it for ever.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

from provisioning.drivers import open_driver
from tests.e2e.conftest import remove_pool
from tests.polling import page_text, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("demo-script")]

ROOT = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (whatever session or group it moved to)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_term_to_the_demos_process_group_ends_every_process(tmp_path):
    port = _free_port()
    pool = f"portal-demo-stop-{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "PORTAL_PORT": str(port),
        "PORTAL_DEPLOYMENT": f"dstop{secrets.token_hex(3)}",
        "PORTAL_STORAGE_POOL": pool,
        "PORTAL_STORAGE_POOL_PATH": f"/var/lib/libvirt/images/{pool}",
        "PORTAL_DEMO_BUILD_CACHE": str(ROOT / "var" / "cache" / "demo-build"),
        "REDIS_URL": "redis://127.0.0.1:6379/13",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PORTAL_TASKS_SYNC", "DJANGO_SECRET_KEY"):
        env.pop(name, None)
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        [str(ROOT / "scripts" / "demo.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: demo.poll() is not None or page_text(f"http://127.0.0.1:{port}/login/"),
            timeout=600,
            interval=1,
            what=f"the demo to serve its login page (log: {tmp_path / 'demo.log'})",
        )
        assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
        # The login page can answer before the clusters have forked their workers, pushers and monitors:
        # django-q2 says "running." once every one of a cluster's processes is up, and the demo runs one
        # cluster per queue.
        worker_log = tmp_path / "var" / "worker.log"
        clusters = len(settings.TASK_CLUSTERS)
        wait_for(
            lambda: worker_log.exists() and worker_log.read_text().count(" running.") >= clusters,
            timeout=120,
            interval=0.5,
            what=f"the demo's {clusters} clusters to say they run (log: {worker_log})",
        )
        family = _descendants(demo.pid) | {demo.pid}
        os.killpg(demo.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in family):
            time.sleep(0.2)
        left = sorted(pid for pid in family if _alive(pid))
        assert left == [], f"still running 15 s after TERM: {left}"
    finally:
        for pid in _descendants(demo.pid) | {demo.pid}:  # only what this test started, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        demo.wait(timeout=10)
        log.close()
        with open_driver("qemu:///system") as driver:
            remove_pool(driver, pool)

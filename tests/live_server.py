"""The portal under a real daphne on 127.0.0.1, for tests that need a browser's or a socket's view.

The server is a child of the test process (forked, so it runs with the test's settings and
database) and is stopped by its process id when the test ends.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from channels.testing.live import make_application
from daphne.testing import DaphneProcess
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections

from tests.polling import wait_for

# Each running server's process id and the file its threads' stacks go to on SIGUSR1, by base URL.
_SERVERS: dict[str, tuple[int, Path]] = {}


@pytest.fixture
def live_portal(transactional_db, tmp_path) -> Iterator[str]:
    """The portal's ASGI application (static files included) under daphne; its base URL."""
    connections.close_all()  # the child must open its own database connections
    server = DaphneProcess("127.0.0.1", partial(make_application, static_wrapper=ASGIStaticFilesHandler))
    # Registered before the fork, so the server inherits it: ``server_threads`` can ask where it is stuck.
    stacks = tmp_path / "live-server-threads.txt"
    with stacks.open("w") as stacks_file:
        faulthandler.register(signal.SIGUSR1, file=stacks_file, all_threads=True)
        server.start()
        try:
            if not server.ready.wait(timeout=30):
                pytest.fail("daphne did not start")
            base_url = f"http://127.0.0.1:{server.port.value}"
            _SERVERS[base_url] = (server.pid, stacks)
            yield base_url
        finally:
            faulthandler.unregister(signal.SIGUSR1)
            _SERVERS.pop(f"http://127.0.0.1:{server.port.value}", None)
            server.terminate()
            server.join(10)
            wait_for_other_sessions_to_leave()


def server_threads(base_url: str) -> str:
    """Where every thread of the live server at ``base_url`` is right now (Python stacks)."""
    pid, stacks = _SERVERS[base_url]
    before = stacks.stat().st_size
    os.kill(pid, signal.SIGUSR1)
    time.sleep(1)
    return stacks.read_text()[before:]


def port_of(base_url: str) -> int:
    port = urlsplit(base_url).port
    assert port is not None
    return port


def wait_for_other_sessions_to_leave() -> None:
    """PostgreSQL notices the child's connections closing a moment after it died; the test database
    can only be emptied and dropped once it has."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

    def alone() -> bool:
        with connections["default"].cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchone()[0] == 0

    wait_for(alone, timeout=10, interval=0.1, what="the server's database connections to close")

"""The portal under a real daphne on 127.0.0.1, for tests that need a browser's or a socket's view.

The server is a child of the test process (forked, so it runs with the test's settings and
database) and is stopped by its process id when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from urllib.parse import urlsplit

import pytest
from channels.testing.live import make_application
from daphne.testing import DaphneProcess
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections

from tests.polling import wait_for


@pytest.fixture
def live_portal(transactional_db) -> Iterator[str]:
    """The portal's ASGI application (static files included) under daphne; its base URL."""
    connections.close_all()  # the child must open its own database connections
    server = DaphneProcess("127.0.0.1", partial(make_application, static_wrapper=ASGIStaticFilesHandler))
    server.start()
    try:
        if not server.ready.wait(timeout=30):
            pytest.fail("daphne did not start")
        yield f"http://127.0.0.1:{server.port.value}"
    finally:
        server.terminate()
        server.join(10)
        wait_for_other_sessions_to_leave()


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

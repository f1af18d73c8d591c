"""A console page never says "Connecting…" for good: an attempt that gets no answer is given up.

The page's ticket request is answered with the address of a loopback server that accepts the
connection and then says nothing, not even the websocket handshake (as a proxy stuck upstream
would): after the page's limit it must say so and offer Reconnect, which tries again.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.browser_pages import new_page, sign_in
from tests.provisioning.test_console_helpers import make_running_instance

GIVE_UP_SECONDS = 30  # CONNECT_SECONDS in static/js/console_session.js


class SilentServer:
    """Accepts connections on 127.0.0.1 and keeps them open without a word."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self._listener.accept()
            except OSError:
                return  # closed
            self.accepted.append(connection)

    def close(self) -> None:
        self._listener.close()
        for connection in self.accepted:
            connection.close()
        self._thread.join(5)


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("kind", ["screen", "serial"])
def test_a_console_that_gets_no_answer_says_so_and_offers_reconnect(
    chromium, live_portal, transactional_db, member, project, silent_server, kind
):
    instance = make_running_instance(project)
    page = new_page(chromium, "desktop")
    silent_url = f"ws://127.0.0.1:{silent_server.port}/ws/consoles/silent/"
    page.route(
        re.compile(r"/api/v1/instances/\d+/console/$"),
        lambda route: route.fulfill(status=201, json={"url": silent_url, "expires_at": "2099-01-01T00:00:00Z"}),
    )
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/instances/{instance.pk}/{kind}/")

    status = page.locator("#console-status")
    status.filter(has_text=f"No answer from the console in {GIVE_UP_SECONDS} s").wait_for(
        timeout=(GIVE_UP_SECONDS + 30) * 1000
    )
    assert page.locator("#console-screen").get_attribute("data-connected") == "no"
    assert len(silent_server.accepted) == 1

    page.get_by_role("button", name="Reconnect").click()  # tries again at once, and says so
    assert status.inner_text() == "Reconnecting…"
    assert page.locator("#console-reconnect").is_hidden()
    for _ in range(100):
        if len(silent_server.accepted) == 2:
            break
        page.wait_for_timeout(100)
    assert len(silent_server.accepted) == 2
    assert page.script_errors == []

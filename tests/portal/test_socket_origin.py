"""Tenants' pages against the portal's websockets: one Origin check (scheme, host, port) on every route."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from portal.asgi import application
from portal.socket_origin import CLOSE_FOREIGN_ORIGIN

# Sockets read the session in another thread, so the tests that get that far need committed rows.
with_sessions = pytest.mark.django_db(transaction=True)

PORTAL_HOST = "127.0.0.1:8000"
ROUTES = ["/ws/stacks/", "/ws/stacks/1/", "/ws/consoles/vnc/?ticket=x", "/ws/consoles/serial/?ticket=x"]


def _headers(client, user, *, origin: str | None, host: str | None = PORTAL_HOST) -> list[tuple[bytes, bytes]]:
    """What a browser sends: the page's Origin, the socket's Host, and ``user``'s session cookie (a
    made-up one for None: refused sockets never get as far as reading it)."""
    headers = []
    if host is not None:
        headers.append((b"host", host.encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if user is None:
        session = "victims-session"
    else:
        client.force_login(user)
        session = client.cookies["sessionid"].value
    headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session}".encode()))
    return headers


def _connect(path: str, headers) -> tuple[bool, int | None]:
    async def scenario():
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await socket.connect(timeout=5)
        if connected:
            await socket.disconnect()
        return connected, code

    return async_to_sync(scenario)()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:20001",  # a tenant's published port on the portal's own host name
        "http://localhost:20001",  # a tenant's endpoint on the endpoints' host name
        "https://127.0.0.1:8000",  # the right host and port, another scheme
        "http://127.0.0.1",  # the right host, port 80
        "http://127.0.0.1:8000@evil.example",
        "null",
    ],
)
def test_a_page_from_another_origin_cannot_open_any_socket(client, route, origin):
    assert _connect(route, _headers(client, None, origin=origin)) == (False, CLOSE_FOREIGN_ORIGIN)


@with_sessions
def test_the_portals_own_pages_open_their_sockets(client, member):
    assert _connect("/ws/stacks/", _headers(client, member, origin=f"http://{PORTAL_HOST}")) == (True, None)


def test_an_origin_with_no_host_to_compare_with_is_refused(client):
    headers = _headers(client, None, origin=f"http://{PORTAL_HOST}", host=None)
    assert _connect("/ws/stacks/", headers) == (False, CLOSE_FOREIGN_ORIGIN)


@with_sessions
def test_behind_tls_only_https_pages_of_the_portal_may_open_sockets(client, member, settings):
    settings.HTTPS = True
    settings.ALLOWED_HOSTS = ["portal.example.org"]
    plain = _headers(client, member, origin="http://portal.example.org", host="portal.example.org")
    assert _connect("/ws/stacks/", plain) == (False, CLOSE_FOREIGN_ORIGIN)
    secure = _headers(client, member, origin="https://portal.example.org", host="portal.example.org")
    assert _connect("/ws/stacks/", secure) == (True, None)


@with_sessions
def test_a_configured_origin_never_lets_the_endpoint_host_in(client, member, settings):
    settings.CONSOLE_ALLOWED_ORIGINS = ["https://console.example.org", "http://localhost:20001"]
    listed = _headers(client, member, origin="https://console.example.org")
    assert _connect("/ws/stacks/", listed) == (True, None)
    endpoint = _headers(client, member, origin="http://localhost:20001")
    assert _connect("/ws/stacks/", endpoint) == (False, CLOSE_FOREIGN_ORIGIN)


@with_sessions
@pytest.mark.parametrize("path", ["/ws/nothing/", "/ws/stacks/abc/", "/", "/ws/consoles/"])
def test_an_unknown_socket_path_is_refused_cleanly(client, path):
    assert _connect(path, _headers(client, None, origin=f"http://{PORTAL_HOST}")) == (False, 4404)

"""The navigation's unread count over /ws/notifications/: one's own count, live; nobody else's."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client
from django.urls import path

from notices.consumers import CLOSE_NOT_SIGNED_IN, UnreadCountConsumer
from notices.models import Notification
from notices.services import notification_mark_read, notify_stack_event
from portal.socket_origin import OriginGuard

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
SOCKET_PATH = "/ws/notifications/"
# Wrapped as portal/asgi.py wraps every socket: the Origin check, the session's user.
application = OriginGuard(
    AuthMiddlewareStack(URLRouter([path(SOCKET_PATH.lstrip("/"), UnreadCountConsumer.as_asgi())]))
)


def headers_for(client, user, origin=ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"127.0.0.1:8000"), origin]
    if user is not None:
        client.force_login(user)
        cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies['sessionid'].value}"
        headers.append((b"cookie", cookie.encode()))
    return headers


async def _open(headers, app=application):
    socket = WebsocketCommunicator(app, SOCKET_PATH, headers=headers)
    connected, code = await socket.connect()
    return socket, connected, code


def test_anonymous_visitors_and_foreign_pages_are_turned_away(client, member):
    anonymous = headers_for(client, None)
    foreign = headers_for(client, member, origin=(b"origin", b"http://127.0.0.1:8001"))  # another port

    async def scenario():
        _socket, connected, code = await _open(anonymous)
        assert (connected, code) == (False, CLOSE_NOT_SIGNED_IN)
        _socket, connected, _code = await _open(foreign)
        assert not connected

    async_to_sync(scenario)()


def test_the_count_is_pushed_when_a_notification_is_made_and_when_it_is_read(client, member, make_stack):
    headers = headers_for(client, member)
    stack = make_stack()

    async def scenario():
        socket, connected, _ = await _open(headers)
        assert connected
        assert await socket.receive_json_from(timeout=5) == {"type": "unread", "count": 0}
        await database_sync_to_async(notify_stack_event)(stack=stack, event="lease.ended")
        assert await socket.receive_json_from(timeout=5) == {"type": "unread", "count": 1}
        notification = await database_sync_to_async(Notification.objects.get)(user=member)
        await database_sync_to_async(notification_mark_read)(user=member, notification=notification)
        assert await socket.receive_json_from(timeout=5) == {"type": "unread", "count": 0}
        await socket.disconnect()

    async_to_sync(scenario)()


def test_someone_of_another_project_hears_nothing(client, member, outsider, make_stack):
    attacker_headers = headers_for(client, outsider)
    member_headers = headers_for(Client(), member)
    stack = make_stack()

    async def scenario():
        attacker, connected, _ = await _open(attacker_headers)
        assert connected
        assert await attacker.receive_json_from(timeout=5) == {"type": "unread", "count": 0}
        watcher, _connected, _ = await _open(member_headers)
        await watcher.receive_json_from(timeout=5)
        await database_sync_to_async(notify_stack_event)(stack=stack, event="stack.deleted")
        assert await watcher.receive_json_from(timeout=5) == {"type": "unread", "count": 1}
        assert await attacker.receive_nothing(timeout=0.5)
        await attacker.disconnect()
        await watcher.disconnect()

    async_to_sync(scenario)()


def test_the_portal_routes_the_socket(client, member):
    """portal/asgi.py must route /ws/notifications/ to UnreadCountConsumer."""
    from portal.asgi import application as portal_application

    headers = headers_for(client, member)

    async def scenario():
        socket, connected, _ = await _open(headers, app=portal_application)
        assert connected
        assert await socket.receive_json_from(timeout=5) == {"type": "unread", "count": 0}
        await socket.disconnect()

    async_to_sync(scenario)()

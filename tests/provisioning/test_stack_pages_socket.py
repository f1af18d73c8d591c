"""The stacks list's websocket, from both sides: one's own stacks are announced, nobody else's are."""

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

from portal.models import Membership
from portal.socket_origin import OriginGuard
from provisioning.services import events, launch, lifecycle
from provisioning.stack_list_socket import CLOSE_NOT_SIGNED_IN, StackListConsumer

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
LIST_PATH = "/ws/stacks/"
# Wrapped as portal/asgi.py wraps every socket: the Origin check, the session's user.
application = OriginGuard(AuthMiddlewareStack(URLRouter([path(LIST_PATH.lstrip("/"), StackListConsumer.as_asgi())])))


@pytest.fixture
def ours(member, project, test_host, ready_version):
    return launch.stack_launch(
        user=member, project=project, name="ours", appliance_version=ready_version, lease_seconds=600
    )


def headers_for(client, user, origin=ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"127.0.0.1:8000"), origin]
    if user is not None:
        client.force_login(user)
        cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies['sessionid'].value}"
        headers.append((b"cookie", cookie.encode()))
    return headers


async def _open(headers, app=application) -> tuple[WebsocketCommunicator, bool, int | None]:
    socket = WebsocketCommunicator(app, LIST_PATH, headers=headers)
    connected, code = await socket.connect()
    return socket, connected, code


def test_a_member_hears_about_a_change_to_one_of_their_stacks(client, django_user_model, member, ours):
    headers = headers_for(client, member)

    async def scenario():
        socket, connected, _ = await _open(headers)
        assert connected
        await database_sync_to_async(events.stack_event)(ours, "image uploaded")
        assert await socket.receive_json_from(timeout=5) == {"type": "changed", "stack": ours.pk}
        await socket.disconnect()

    async_to_sync(scenario)()


def test_a_member_hears_when_their_stack_is_deleted(client, member, ours):
    headers = headers_for(client, member)

    async def scenario():
        socket, connected, _ = await _open(headers)
        assert connected
        await database_sync_to_async(lifecycle.stack_destroy)(user=member, stack=ours)
        assert await socket.receive_json_from(timeout=5) == {"type": "changed", "stack": ours.pk}
        await socket.disconnect()

    async_to_sync(scenario)()


def test_a_user_of_another_project_hears_nothing_of_it(client, member, outsider, ours):
    """The attacker's side: connected to the same list socket, owner of project B, watching A's stack change."""
    attacker_headers = headers_for(client, outsider)
    member_headers = headers_for(Client(), member)  # a session of its own: the attacker's stays signed in

    async def scenario():
        attacker, connected, _ = await _open(attacker_headers)
        assert connected  # a signed-in user may watch their own list...
        watcher, watcher_connected, _ = await _open(member_headers)
        assert watcher_connected
        await database_sync_to_async(events.stack_event)(ours, "something happened")
        assert await watcher.receive_json_from(timeout=5) == {"type": "changed", "stack": ours.pk}
        assert await attacker.receive_nothing(timeout=0.5)  # ...but hears nothing of project A
        await attacker.disconnect()
        await watcher.disconnect()

    async_to_sync(scenario)()


def test_someone_removed_from_the_project_stops_hearing_at_once(client, member, project, ours):
    headers = headers_for(client, member)

    async def scenario():
        socket, connected, _ = await _open(headers)
        assert connected
        await database_sync_to_async(Membership.objects.filter(user=member, project=project).delete)()
        await database_sync_to_async(events.stack_event)(ours, "after the removal")
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()

    async_to_sync(scenario)()


def test_operators_hear_about_every_project(client, operator, ours):
    headers = headers_for(client, operator)

    async def scenario():
        socket, connected, _ = await _open(headers)
        assert connected
        await database_sync_to_async(events.stack_event)(ours, "seen by the operators")
        assert await socket.receive_json_from(timeout=5) == {"type": "changed", "stack": ours.pk}
        await socket.disconnect()

    async_to_sync(scenario)()


def test_anonymous_visitors_and_foreign_pages_are_turned_away(client, member, ours):
    anonymous = headers_for(client, None)
    foreign = headers_for(client, member, origin=(b"origin", b"https://evil.example"))

    async def scenario():
        _socket, connected, code = await _open(anonymous)
        assert (connected, code) == (False, CLOSE_NOT_SIGNED_IN)
        _socket, connected, _code = await _open(foreign)
        assert not connected

    async_to_sync(scenario)()


def test_the_portal_routes_the_list_socket(client, member, ours):
    """portal/asgi.py must route /ws/stacks/ to StackListConsumer (see provisioning.stack_list_socket)."""
    from portal.asgi import application as portal_application

    headers = headers_for(client, member)

    async def scenario():
        socket, connected, _ = await _open(headers, app=portal_application)
        assert connected, "add the /ws/stacks/ route to portal/asgi.py"
        await database_sync_to_async(events.stack_event)(ours, "through the real router")
        assert await socket.receive_json_from(timeout=5) == {"type": "changed", "stack": ours.pk}
        await socket.disconnect()

    async_to_sync(scenario)()

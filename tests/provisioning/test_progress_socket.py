"""The stack page's websocket: who may open it, and that a worker's change reaches it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from portal.asgi import application
from provisioning.services import events, launch

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
TEST_REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def stack(member, project, test_host, ready_version):
    return launch.stack_launch(
        user=member, project=project, name="watched", appliance_version=ready_version, lease_seconds=600
    )


def headers_for(client, user, origin=ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"127.0.0.1:8000"), origin]
    if user is not None:
        client.force_login(user)
        headers.append(
            (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={client.cookies['sessionid'].value}".encode())
        )
    return headers


async def _open(stack_id: int, headers) -> tuple[WebsocketCommunicator, bool, int | None]:
    socket = WebsocketCommunicator(application, f"/ws/stacks/{stack_id}/", headers=headers)
    connected, code = await socket.connect()
    return socket, connected, code


def test_member_is_nudged_when_the_stack_changes(client, member, stack):
    headers = headers_for(client, member)

    async def scenario():
        socket, connected, _ = await _open(stack.pk, headers)
        assert connected
        await database_sync_to_async(events.stack_event)(stack, "something happened")
        assert await socket.receive_json_from(timeout=5) == {"type": "changed", "stack": stack.pk}
        await socket.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("who", ["outsider", "anonymous"])
def test_others_are_turned_away(client, outsider, stack, who):
    headers = headers_for(client, outsider if who == "outsider" else None)

    async def scenario():
        _socket, connected, code = await _open(stack.pk, headers)
        assert (connected, code) == (False, 4404)

    async_to_sync(scenario)()


def test_foreign_origin_is_refused(client, member, stack):
    headers = headers_for(client, member, origin=(b"origin", b"https://evil.example"))

    async def scenario():
        _socket, connected, _ = await _open(stack.pk, headers)
        assert not connected

    async_to_sync(scenario)()


def test_a_change_in_another_process_arrives_through_redis(client, member, stack, settings):
    """What a django-q2 worker does: announce from its own process; daphne's consumer hears it."""
    prefix = f"test-{secrets.token_hex(4)}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [TEST_REDIS_URL], "prefix": prefix},
        }
    }
    channel_layers.backends.clear()  # layers are built once per process; rebuild with the Redis one
    announce = (
        "import django; django.setup(); from provisioning.progress import announce_stack_change; "
        f"announce_stack_change({stack.pk})"
    )
    env = {**os.environ, "REDIS_URL": TEST_REDIS_URL, "PORTAL_CHANNEL_PREFIX": prefix}
    headers = headers_for(client, member)

    async def scenario():
        socket, connected, _ = await _open(stack.pk, headers)
        assert connected
        subprocess.run([sys.executable, "-c", announce], env=env, check=True, cwd=django_settings.BASE_DIR, timeout=60)
        assert await socket.receive_json_from(timeout=10) == {"type": "changed", "stack": stack.pk}
        await socket.disconnect()

    try:
        async_to_sync(scenario)()
    finally:
        channel_layers.backends.clear()

"""The console websockets with WebsocketCommunicator: who gets through, what flows, what ends them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from django.utils import timezone

from portal.asgi import application
from portal.models import AuditEvent, Membership, Role
from provisioning.consoles import backends, tickets
from provisioning.models import ConsoleTicket, Stack
from provisioning.services import lifecycle
from tests.provisioning.test_console_helpers import (
    SERVER_INIT,
    FakeSerialConsole,
    make_running_instance,
    open_console,
    receive_backlog,
    receive_exactly,
    socket_headers,
    vnc_handshake_as_browser,
    vnc_server,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def instance(project, vnc_server):  # noqa: F811
    return make_running_instance(project, vnc_port=vnc_server.port, password=vnc_server.password)


def issue(user, instance, kind="vnc") -> str:
    return tickets.console_ticket_issue(user=user, instance=instance, kind=kind).ticket


def refused_with(ticket: str, headers, kind: str = "vnc") -> int:
    async def scenario():
        _socket, connected, code = await open_console(kind, ticket, headers)
        assert not connected
        return code

    return async_to_sync(scenario)()


def test_a_good_ticket_connects_and_bytes_flow_both_ways(client, member, instance, vnc_server):  # noqa: F811
    ticket = issue(member, instance)
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, headers, subprotocols=["binary"])
        assert connected
        await vnc_handshake_as_browser(socket_)
        assert await receive_exactly(socket_, len(SERVER_INIT)) == SERVER_INIT
        await socket_.send_to(bytes_data=b"\x03\x01\x00\x00\x00\x00\x02\x80\x01\xe0")  # FramebufferUpdateRequest
        assert await receive_exactly(socket_, 10) == b"\x03\x01\x00\x00\x00\x00\x02\x80\x01\xe0"  # echoed
        await socket_.disconnect()

    async_to_sync(scenario)()
    assert vnc_server.authenticated == 1  # the proxy, with the password; the browser chose None
    row = ConsoleTicket.objects.get()
    assert row.used_at
    assert row.opened_at
    assert row.closed_at
    assert row.client_address == "127.0.0.1"
    opened, closed = AuditEvent.objects.filter(action__startswith="console.").order_by("pk")
    assert (opened.action, opened.actor, opened.detail["kind"]) == ("console.open", member, "vnc")
    assert closed.action == "console.close"
    assert closed.detail["client_address"] == "127.0.0.1"
    assert closed.detail["duration_seconds"] >= 0
    assert closed.detail["bytes_to_vm"] > 0
    assert closed.detail["bytes_from_vm"] > 0
    assert f"provisioning.instance:{instance.pk}" in closed.target


def test_a_client_without_origin_or_session_gets_in_with_its_ticket(member, instance):
    ticket = issue(member, instance)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, socket_headers(origin=None))
        assert connected
        await vnc_handshake_as_browser(socket_)
        await socket_.disconnect()

    async_to_sync(scenario)()


def test_an_expired_ticket_is_refused(client, member, instance):
    ticket = issue(member, instance)
    ConsoleTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert refused_with(ticket, socket_headers(client, member)) == tickets.CLOSE_BAD_TICKET


def test_a_ticket_opens_one_socket_only(client, member, instance):
    ticket = issue(member, instance)
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, headers)
        assert connected
        await socket_.disconnect()
        _again, connected, code = await open_console("vnc", ticket, headers)
        assert (connected, code) == (False, tickets.CLOSE_BAD_TICKET)

    async_to_sync(scenario)()


def test_a_made_up_ticket_and_a_vnc_ticket_on_the_serial_socket_are_refused(client, member, instance):
    headers = socket_headers(client, member)
    assert refused_with("not-a-ticket", headers) == tickets.CLOSE_BAD_TICKET
    assert refused_with("", headers) == tickets.CLOSE_BAD_TICKET
    assert refused_with(issue(member, instance, "vnc"), headers, kind="serial") == tickets.CLOSE_BAD_TICKET


def test_a_ticket_presented_with_another_users_session_is_refused(client, member, owner, instance):
    ticket = issue(member, instance)
    assert refused_with(ticket, socket_headers(client, owner)) == tickets.CLOSE_BAD_TICKET
    assert ConsoleTicket.objects.get().opened_at is None  # spent all the same: it cannot be tried again


def test_another_projects_instance_is_refused(client, member, outsider, instance):
    """The service never issues such a ticket; one that exists anyway (or whose user left) opens nothing."""
    stolen = "forged-for-the-outsider"
    ConsoleTicket.objects.create(
        digest=tickets.ticket_digest(stolen),
        user=outsider,
        instance=instance,
        kind="vnc",
        expires_at=timezone.now() + timedelta(seconds=60),
        user_auth_hash=outsider.get_session_auth_hash(),
    )
    assert refused_with(stolen, socket_headers(client, outsider)) == tickets.CLOSE_NOT_FOUND
    ticket = issue(member, instance)
    Membership.objects.filter(user=member).delete()
    assert refused_with(ticket, socket_headers(client, member)) == tickets.CLOSE_NOT_FOUND


def test_a_viewer_is_refused(client, member, instance):
    ticket = issue(member, instance)
    Membership.objects.filter(user=member).update(role=Role.VIEWER)  # demoted after the ticket was issued
    assert refused_with(ticket, socket_headers(client, member)) == tickets.CLOSE_FORBIDDEN


def test_a_deleted_instance_is_refused(client, member, instance):
    ticket = issue(member, instance)
    lifecycle.stack_destroy(user=member, stack=instance.stack)
    assert refused_with(ticket, socket_headers(client, member)) == tickets.CLOSE_NOT_FOUND


def test_an_instance_removed_from_the_database_is_refused(client, member, instance):
    ticket = issue(member, instance)
    instance.delete()
    assert refused_with(ticket, socket_headers(client, member)) == tickets.CLOSE_BAD_TICKET


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://127.0.0.1:8000.evil.example", "http://127.0.0.1:9999", "null", "file://"],
)
def test_a_foreign_origin_is_refused_and_leaves_the_ticket_unspent(client, member, instance, origin):
    ticket = issue(member, instance)
    assert refused_with(ticket, socket_headers(client, member, origin=origin)) == tickets.CLOSE_FORBIDDEN
    assert ConsoleTicket.objects.get().used_at is None


def test_a_configured_origin_is_let_in(client, member, instance, settings):
    settings.CONSOLE_ALLOWED_ORIGINS = ["https://console.example.org"]
    ticket = issue(member, instance)
    headers = socket_headers(client, member, origin="https://console.example.org")

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, headers)
        assert connected
        await socket_.disconnect()

    async_to_sync(scenario)()


def test_the_socket_closes_when_the_stack_is_deleted(client, member, instance):
    ticket = issue(member, instance)
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, headers)
        assert connected
        await vnc_handshake_as_browser(socket_)
        await database_sync_to_async(lifecycle.stack_destroy)(user=member, stack=instance.stack)
        closed = await _next_close(socket_)
        assert closed["code"] == tickets.CLOSE_ENDED
        await socket_.disconnect()

    async_to_sync(scenario)()
    closing = AuditEvent.objects.get(action="console.close")
    assert closing.detail["reason"] in ("the stack is deleting", "the stack is deleted")  # teardowns run inline here


def test_the_socket_closes_when_the_lease_runs_out(client, member, instance):
    Stack.objects.filter(pk=instance.stack_id).update(expires_at=timezone.now() + timedelta(seconds=1))
    ticket = issue(member, instance)
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, headers)
        assert connected
        closed = await _next_close(socket_, timeout=10)
        assert closed["code"] == tickets.CLOSE_ENDED
        await socket_.disconnect()

    async_to_sync(scenario)()
    assert AuditEvent.objects.get(action="console.close").detail["reason"] == "the stack's lease has ended"


def test_a_ticket_issued_before_a_password_change_is_refused(client, member, instance):
    ticket = issue(member, instance)
    member.set_password("changed after the ticket")
    member.save()
    assert refused_with(ticket, {}) == tickets.CLOSE_BAD_TICKET  # no session: the ticket alone is judged


def test_an_open_console_ends_when_the_users_password_changes(client, member, instance, monkeypatch):
    monkeypatch.setattr("provisioning.consoles.consumers.HEARTBEAT_SECONDS", 0.2)
    ticket = issue(member, instance)
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, headers)
        assert connected
        await vnc_handshake_as_browser(socket_)

        def change_password():
            member.set_password("a new one")
            member.save()

        await database_sync_to_async(change_password)()
        closed = await _next_close(socket_, timeout=10)
        assert closed["code"] == tickets.CLOSE_ENDED
        await socket_.disconnect()

    async_to_sync(scenario)()
    assert AuditEvent.objects.get(action="console.close").detail["reason"] == "the user's password changed"


def test_each_user_has_a_limit_of_open_consoles(client, member, instance, settings):
    settings.CONSOLE_MAX_OPEN_PER_USER = 1
    first, second = issue(member, instance), issue(member, instance)
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", first, headers)
        assert connected
        _other, connected, code = await open_console("vnc", second, headers)
        assert (connected, code) == (False, tickets.CLOSE_TOO_MANY)
        await socket_.disconnect()

    async_to_sync(scenario)()


def test_a_vnc_server_that_refuses_the_password_closes_the_socket(client, member, project, vnc_server):  # noqa: F811
    instance = make_running_instance(project, vnc_port=vnc_server.port, password="wrong123")
    assert refused_with(issue(member, instance), socket_headers(client, member)) == tickets.CLOSE_UNREACHABLE
    # In the portal's words only: what the VNC server or the OS said goes to the operators' log.
    assert AuditEvent.objects.get(action="console.close").detail["reason"] == "unreachable: VNC handshake failed"


def test_the_browser_may_not_choose_vnc_authentication(client, member, instance):
    ticket = issue(member, instance)
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, headers)
        assert connected
        await receive_exactly(socket_, 12)
        await socket_.send_to(bytes_data=b"RFB 003.008\n")
        await receive_exactly(socket_, 2)
        await socket_.send_to(bytes_data=b"\x02")  # VNC authentication: not offered
        closed = await _next_close(socket_)
        assert closed["code"] == tickets.CLOSE_FORBIDDEN
        await socket_.disconnect()

    async_to_sync(scenario)()


def test_serial_console_bytes_flow_both_ways_and_the_console_is_closed(client, member, instance, monkeypatch):
    console = FakeSerialConsole()
    opened_for = []

    def fake_open_serial(grant):
        opened_for.append(grant.domain_name)
        return console

    monkeypatch.setattr(backends, "open_serial", fake_open_serial)
    ticket = issue(member, instance, "serial")
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("serial", ticket, headers)
        assert connected
        await receive_backlog(socket_)
        console.feed(b"DEMO-APPLIANCE-READY demo-web port 80\r\n")
        assert await socket_.receive_from(timeout=5) == b"DEMO-APPLIANCE-READY demo-web port 80\r\n"
        await socket_.send_to(text_data="ls\r")  # xterm.js may send text frames
        await socket_.send_to(bytes_data=b"\x03")
        assert await asyncio.to_thread(console.written.get, timeout=5) == b"ls\r"
        assert await asyncio.to_thread(console.written.get, timeout=5) == b"\x03"
        await socket_.disconnect()

    async_to_sync(scenario)()
    assert opened_for == [instance.domain_name]
    assert console.closed.is_set()
    assert AuditEvent.objects.get(action="console.close").detail["kind"] == "serial"


def test_the_serial_socket_closes_when_the_console_ends(client, member, instance, monkeypatch):
    console = FakeSerialConsole()
    monkeypatch.setattr(backends, "open_serial", lambda grant: console)
    ticket = issue(member, instance, "serial")
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("serial", ticket, headers)
        assert connected
        console.close()  # taken over by another session, or the domain stopped
        closed = await _next_close(socket_)
        assert closed["code"] == 1000
        await socket_.disconnect()

    async_to_sync(scenario)()


def test_a_browser_gone_before_its_disconnect_arrives_ends_the_session_as_closed_by_it(
    client, member, instance, monkeypatch
):
    # daphne closes its side as soon as the connection drops and tells the consumer later: a send in
    # between raises autobahn's Disconnected. That is the browser leaving, not a proxy failure.
    console = FakeSerialConsole()
    monkeypatch.setattr(backends, "open_serial", lambda grant: console)
    browser_gone = asyncio.Event()

    async def like_daphne(scope, receive, send):
        async def send_unless_gone(message):
            if message["type"] == "websocket.send" and browser_gone.is_set():
                raise Disconnected("Attempt to send on a closed protocol")
            await send(message)

        return await application(scope, receive, send_unless_gone)

    ticket = issue(member, instance, "serial")
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("serial", ticket, headers, app=like_daphne)
        assert connected
        await receive_backlog(socket_)
        console.feed(b"boot log\r\n")
        assert await socket_.receive_from(timeout=5) == b"boot log\r\n"
        browser_gone.set()
        console.feed(b"more than the browser stayed for\r\n")
        await asyncio.to_thread(console.closed.wait, 5)
        await socket_.disconnect()

    async_to_sync(scenario)()
    assert console.closed.is_set()
    assert AuditEvent.objects.get(action="console.close").detail["reason"] == "the browser closed the socket"


def test_a_serial_console_that_cannot_be_opened_closes_the_socket(client, member, instance, monkeypatch):
    def unreachable(grant):
        raise backends.ConsoleUnreachable("host down")

    monkeypatch.setattr(backends, "open_serial", unreachable)
    ticket = issue(member, instance, "serial")
    assert refused_with(ticket, socket_headers(client, member), kind="serial") == tickets.CLOSE_UNREACHABLE


async def _next_close(socket_, timeout: float = 5) -> dict:
    """Skip data still in flight until the close message arrives."""
    while True:
        message = await socket_.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message

"""What the console tests share: a running instance, a fake VNC server, a fake serial console, sockets.

No tests here; the test modules import these.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.utils import timezone

from portal.asgi import application
from provisioning.consoles import rfb
from provisioning.consoles.backlog import ConsoleBacklog
from provisioning.models import Host, Instance, Stack, Status
from tests.factories import ApplianceVersionFactory, HostFactory

PORTAL_ORIGIN = "http://127.0.0.1:8000"
SERVER_INIT = struct.pack(">HH", 640, 480) + bytes(16) + struct.pack(">I", 4) + b"fake"


def make_running_instance(project, *, vnc_port: int | None = 5900, password: str = "pw123456") -> Instance:
    """A stack and instance rows as a finished build leaves them (no libvirt involved)."""
    host = Host.objects.filter(name="console-host").first() or HostFactory(
        name="console-host", uri="test:///default", console_address="127.0.0.1"
    )
    stack = Stack.objects.create(
        project=project, name="consoled", status=Status.RUNNING, expires_at=timezone.now() + timedelta(hours=1)
    )
    return Instance.objects.create(
        stack=stack,
        name="consoled-web-1",
        role="web",
        appliance_version=ApplianceVersionFactory(),
        host=host,
        vcpus=1,
        memory_mib=128,
        status=Status.RUNNING,
        domain_name=f"console-test-{stack.pk}",
        vnc_port=vnc_port,
        vnc_password=password,
    )


class FakeVncServer(socketserver.ThreadingTCPServer):
    """An RFB 3.8 server on loopback that wants VNC authentication, then echoes what it receives.

    ``offer`` lists the security types it offers; ``received`` collects what clients sent after
    ``ClientInit``; ``authenticated`` counts successful authentications.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, password: str, offer: bytes = bytes([rfb.SECURITY_VNC_AUTH])) -> None:
        super().__init__(("127.0.0.1", 0), _FakeVncHandler)
        self.password = password
        self.offer = offer
        self.received: queue.Queue[bytes] = queue.Queue()
        self.authenticated = 0
        self.handlers: list[socket.socket] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def drop_clients(self) -> None:
        for conn in self.handlers:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _FakeVncHandler(socketserver.BaseRequestHandler):
    server: FakeVncServer

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            piece = self.request.recv(count - len(data))
            if not piece:
                raise EOFError
            data += piece
        return data

    def handle(self) -> None:
        self.server.handlers.append(self.request)
        try:
            self._serve()
        except (EOFError, OSError):
            return

    def _serve(self) -> None:
        conn, server = self.request, self.server
        conn.sendall(rfb.version_message(8))
        assert self._read(12) == rfb.version_message(8)
        conn.sendall(bytes([len(server.offer)]) + server.offer)
        chosen = self._read(1)[0]
        if chosen == rfb.SECURITY_VNC_AUTH:
            challenge = bytes(range(16))
            conn.sendall(challenge)
            if self._read(16) != rfb.vnc_auth_response(server.password, challenge):
                reason = b"Authentication failed"
                conn.sendall(struct.pack(">II", 1, len(reason)) + reason)
                return
        conn.sendall(struct.pack(">I", 0))
        server.authenticated += 1
        self._read(1)  # ClientInit
        conn.sendall(SERVER_INIT)
        while data := conn.recv(65536):
            server.received.put(data)
            conn.sendall(data)


@pytest.fixture
def vnc_server() -> Iterator[FakeVncServer]:
    server = FakeVncServer(password="pw123456")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.drop_clients()
    server.server_close()
    thread.join(5)


class FakeSerialConsole:
    """Stands in for ``backends.SerialConsole``: ``feed`` is the guest writing; ``written`` what it got;
    ``backlog_data`` what its log holds (``backlogs_read`` counts reads of it)."""

    def __init__(self, backlog_data: bytes = b"") -> None:
        self._output: queue.Queue[bytes] = queue.Queue()
        self.written: queue.Queue[bytes] = queue.Queue()
        self.closed = threading.Event()
        self.backlog_data = backlog_data
        self.backlogs_read: list[tuple[str, str]] = []

    def backlog(self, *, pool: str, name: str) -> ConsoleBacklog:
        self.backlogs_read.append((pool, name))
        return ConsoleBacklog(self.backlog_data, False, len(self.backlog_data), available=True)

    def feed(self, data: bytes) -> None:
        self._output.put(data)

    def read(self, max_bytes: int) -> bytes:
        while not self.closed.is_set():
            try:
                return self._output.get(timeout=0.05)
            except queue.Empty:
                continue
        return b""

    def write(self, data: bytes) -> None:
        self.written.put(data)

    def close(self) -> None:
        self.closed.set()


async def receive_backlog(socket_: WebsocketCommunicator, timeout: float = 10) -> tuple[dict, bytes]:
    """The serial socket's opening: its backlog note and the backlog's bytes, up to the "live" note."""
    note = json.loads(await socket_.receive_from(timeout=timeout))
    assert note["type"] == "backlog", note
    data = b""
    while True:
        message = await socket_.receive_from(timeout=timeout)
        if isinstance(message, str):
            assert json.loads(message) == {"type": "live"}
            return note, data
        data += message


def socket_headers(client=None, user=None, origin: str | None = PORTAL_ORIGIN) -> list[tuple[bytes, bytes]]:
    """Handshake headers as a browser on the portal's page sends them, with ``user``'s session cookie."""
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if user is not None:
        client.force_login(user)
        cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies['sessionid'].value}"
        headers.append((b"cookie", cookie.encode()))
    return headers


async def open_console(
    kind: str, ticket: str, headers, subprotocols=None, app=application
) -> tuple[WebsocketCommunicator, bool, int]:
    socket_ = WebsocketCommunicator(
        app, f"/ws/consoles/{kind}/?ticket={ticket}", headers=headers, subprotocols=subprotocols
    )
    socket_.scope["client"] = ["127.0.0.1", 54321]  # what daphne puts there; the communicator leaves it out
    connected, code = await socket_.connect(timeout=10)
    return socket_, connected, code


async def vnc_handshake_as_browser(socket_: WebsocketCommunicator) -> None:
    """What noVNC does: version 3.8, security type None, ClientInit; returns after ServerInit."""
    assert await receive_exactly(socket_, 12) == rfb.version_message(8)
    await socket_.send_to(bytes_data=rfb.version_message(8))
    assert await receive_exactly(socket_, 2) == bytes([1, rfb.SECURITY_NONE])
    await socket_.send_to(bytes_data=bytes([rfb.SECURITY_NONE]))
    assert await receive_exactly(socket_, 4) == b"\0\0\0\0"
    await socket_.send_to(bytes_data=b"\x01")  # ClientInit: shared


_leftovers: dict[int, bytes] = {}


async def receive_exactly(socket_: WebsocketCommunicator, count: int, timeout: float = 10) -> bytes:
    """``count`` bytes from the socket, however the proxy framed them."""
    data = _leftovers.pop(id(socket_), b"")
    while len(data) < count:
        data += await socket_.receive_from(timeout=timeout)
    if len(data) > count:
        _leftovers[id(socket_)] = data[count:]
    return data[:count]


async def vnc_security_types(port: int) -> bytes:
    """The security types a VNC server on loopback offers to a client speaking 3.8."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readexactly(12)
        writer.write(rfb.version_message(8))
        count = (await reader.readexactly(1))[0]
        return await reader.readexactly(count)
    finally:
        writer.close()


async def vnc_log_in(port: int, password: str) -> None:
    """Authenticate straight to a VNC server on loopback, as anyone on the host could try."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        await rfb.authenticate_to_server(reader.readexactly, write, password=password)
    finally:
        writer.close()

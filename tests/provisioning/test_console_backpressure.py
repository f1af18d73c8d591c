"""Backpressure through the VNC proxy under a real daphne: a browser that stops reading stops the VM.

daphne gives an ASGI application no flow control of its own; the console registers a Twisted producer
on the browser's transport (``provisioning.consoles.browser_flow``). Here a fake VNC server writes as
fast as its socket takes bytes while the browser reads nothing: what the server manages to write must
level off at what the buffers in between hold, and grow again once the browser reads.

Everything listens on 127.0.0.1. daphne runs in a child process forked from the test (so with its
settings and database), stopped through its own handle.
"""

from __future__ import annotations

import asyncio
import select
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from provisioning.consoles import rfb
from provisioning.consoles.tickets import console_ticket_issue
from tests.live_server import port_of
from tests.provisioning.test_console_helpers import SERVER_INIT, make_running_instance

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
PASSWORD = "pw123456"
FLOOD_PIECE = b"\xa5" * (64 * 1024)
# The buffers between the VM and a browser that reads nothing: kernel socket buffers on four sockets,
# the proxy's own queue and Twisted's write buffer (some 7 MiB here). Without flow control there is
# no bound at all: the proxy reads the VM as fast as it writes, and daphne's memory grows.
BOUND_BYTES = 32 * MIB
# What the browser reads to show the flow coming back: more than all those buffers can hold.
READ_AGAIN_BYTES = 2 * BOUND_BYTES
SMALL_SOCKET_BUFFER = 64 * 1024
STALL_POLLS = 10  # consecutive polls without a byte written: the server is held
POLL_SECONDS = 0.1


class FloodingVncServer(socketserver.ThreadingTCPServer):
    """RFB 3.8 with VNC authentication, then ServerInit and bytes as fast as the socket takes them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FloodHandler)
        self.written = 0
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _FloodHandler(socketserver.BaseRequestHandler):
    server: FloodingVncServer

    def handle(self) -> None:
        conn = self.request
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SOCKET_BUFFER)
        try:
            self._authenticate(conn)
            self._flood(conn)
        except (EOFError, OSError):
            return

    def _read(self, conn: socket.socket, count: int) -> bytes:
        data = b""
        while len(data) < count:
            piece = conn.recv(count - len(data))
            if not piece:
                raise EOFError
            data += piece
        return data

    def _authenticate(self, conn: socket.socket) -> None:
        conn.sendall(rfb.version_message(8))
        self._read(conn, 12)
        conn.sendall(bytes([1, rfb.SECURITY_VNC_AUTH]))
        self._read(conn, 1)
        challenge = bytes(range(16))
        conn.sendall(challenge)
        if self._read(conn, 16) != rfb.vnc_auth_response(PASSWORD, challenge):
            raise EOFError
        conn.sendall(struct.pack(">I", 0))
        self._read(conn, 1)  # ClientInit
        conn.sendall(SERVER_INIT)

    def _flood(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        while not self.server.stopping.is_set():
            _, writable, _ = select.select([], [conn], [], POLL_SECONDS)
            if writable:
                try:
                    self.server.written += conn.send(FLOOD_PIECE)
                except BlockingIOError:
                    continue


@pytest.fixture
def flooding_server() -> Iterator[FloodingVncServer]:
    server = FloodingVncServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def _browser_socket(port: int) -> socket.socket:
    """A connected socket with a small receive buffer, so the kernel holds little of what is not read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_SOCKET_BUFFER)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def _read_exactly(ws: ClientConnection, count: int) -> bytes:
    data = b""
    while len(data) < count:
        message = await asyncio.wait_for(ws.recv(), 30)
        assert isinstance(message, bytes)
        data += message
    return data


async def _handshake_as_browser(ws: ClientConnection) -> None:
    """Security type None towards the proxy, ClientInit, and the ServerInit that comes back."""
    assert await _read_exactly(ws, 12) == rfb.version_message(8)
    await ws.send(rfb.version_message(8))
    assert await _read_exactly(ws, 2) == bytes([1, rfb.SECURITY_NONE])
    await ws.send(bytes([rfb.SECURITY_NONE]))
    assert await _read_exactly(ws, 4) == bytes(4)
    await ws.send(b"\x01")
    assert (await _read_exactly(ws, len(SERVER_INIT)))[: len(SERVER_INIT)] == SERVER_INIT


async def _written_once_held(server: FloodingVncServer) -> int:
    """What the server has written once it stops getting anywhere, or as soon as it passes the bound."""
    last, still = -1, 0
    while still < STALL_POLLS and server.written <= BOUND_BYTES:
        await asyncio.sleep(POLL_SECONDS)
        still = still + 1 if server.written == last else 0
        last = server.written
    return server.written


async def _read_until_written(ws: ClientConnection, server: FloodingVncServer, target: int) -> int:
    received = 0
    while server.written < target:
        message = await asyncio.wait_for(ws.recv(), 30)
        received += len(message)
    return received


def test_a_browser_that_reads_nothing_holds_the_vnc_server_back(member, project, flooding_server, live_portal):
    instance = make_running_instance(project, vnc_port=flooding_server.port, password=PASSWORD)
    ticket = console_ticket_issue(user=member, instance=instance, kind="vnc").ticket
    url = f"ws://127.0.0.1:{port_of(live_portal)}/ws/consoles/vnc/?ticket={ticket}"

    async def scenario() -> tuple[int, int, int]:
        async with connect(
            url,
            sock=_browser_socket(port_of(live_portal)),
            subprotocols=[Subprotocol("binary")],
            compression=None,
            proxy=None,
            max_size=None,
            max_queue=1,  # the client library itself holds one message, then stops reading the socket
            ping_interval=None,
        ) as ws:
            await _handshake_as_browser(ws)
            held = await _written_once_held(flooding_server)
            received = await _read_until_written(ws, flooding_server, held + READ_AGAIN_BYTES)
            return held, received, flooding_server.written

    held, received, written = asyncio.run(scenario())
    assert 0 < held <= BOUND_BYTES, f"the VNC server wrote {held / MIB:.0f} MiB to a browser that read nothing"
    assert written >= held + READ_AGAIN_BYTES  # reading let it go on ...
    assert received >= READ_AGAIN_BYTES - BOUND_BYTES  # ... through to the browser, not into a buffer

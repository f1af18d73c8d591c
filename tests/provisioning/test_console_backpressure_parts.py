"""The parts of the console's flow control: the VNC connection after the handshake, and the producer on daphne's side.

``VncStream`` runs on a real socket pair; ``browser_flow`` on stand-ins shaped like daphne's objects
(the test against a real daphne is in ``test_console_backpressure``).
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.web.http import HTTPChannel

from provisioning.consoles import browser_flow
from provisioning.consoles.vnc_stream import MAX_PIECE_BYTES, QUEUE_LIMIT_BYTES, VncStream

KIB = 1024


def run(scenario: Callable[[socket.socket, VncStream], Awaitable[None]], *, held: bytes = b"") -> None:
    """``scenario(peer, stream)`` on a loopback socket pair, ``held`` already buffered by the StreamReader."""

    async def main() -> None:
        ours, peer = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=ours)
        reader.feed_data(held)  # what arrived with the handshake's last read
        stream = VncStream.take_over(reader, writer)
        try:
            await scenario(peer, stream)
        finally:
            await stream.close()
            peer.close()

    asyncio.run(main())


async def read_all(stream: VncStream, count: int) -> list[bytes]:
    pieces: list[bytes] = []
    while sum(map(len, pieces)) < count:
        piece = await asyncio.wait_for(stream.read(), 10)
        assert piece is not None
        pieces.append(piece)
    return pieces


def test_bytes_the_stream_reader_held_come_first():
    async def scenario(peer: socket.socket, stream: VncStream) -> None:
        peer.sendall(b"later")
        assert b"".join(await read_all(stream, 9)) == b"heldlater"

    run(scenario, held=b"held")


def test_a_piece_larger_than_a_message_is_cut():
    async def scenario(peer: socket.socket, stream: VncStream) -> None:
        pieces = await read_all(stream, 600 * KIB)
        assert [len(piece) for piece in pieces] == [MAX_PIECE_BYTES, MAX_PIECE_BYTES, 600 * KIB - 2 * MAX_PIECE_BYTES]

    run(scenario, held=bytes(600 * KIB))


def test_reading_stops_while_anything_holds_the_stream():
    async def scenario(peer: socket.socket, stream: VncStream) -> None:
        transport = stream._transport
        stream.hold("browser")
        stream.hold("queue")
        assert not transport.is_reading()
        stream.release("browser")
        assert not transport.is_reading()
        stream.release("queue")
        stream.release("queue")  # releasing twice does not matter
        assert transport.is_reading()

    run(scenario)


def test_a_full_queue_stops_reading_until_it_is_taken():
    async def scenario(peer: socket.socket, stream: VncStream) -> None:
        piece = bytes(MAX_PIECE_BYTES)
        for _ in range(QUEUE_LIMIT_BYTES // len(piece) + 1):
            stream.data_received(piece)
        assert not stream._transport.is_reading()
        await stream.read()
        assert stream._transport.is_reading()

    run(scenario)


def test_writes_reach_the_vm_and_its_close_ends_the_reads():
    async def scenario(peer: socket.socket, stream: VncStream) -> None:
        await stream.write(b"key event")
        assert await asyncio.to_thread(peer.recv, 64) == b"key event"
        peer.sendall(b"last update")
        peer.shutdown(socket.SHUT_WR)
        assert await read_all(stream, len(b"last update")) == [b"last update"]
        assert await asyncio.wait_for(stream.read(), 10) is None

    run(scenario)


def test_closing_the_stream_closes_the_connection():
    async def scenario(peer: socket.socket, stream: VncStream) -> None:
        await asyncio.wait_for(stream.close(), 10)
        assert await asyncio.to_thread(peer.recv, 64) == b""

    run(scenario)


# --- browser_flow, on stand-ins for daphne's objects ---------------------------------------------


class FakeReactor:
    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._asyncioEventloop = loop


class FakeTransport:
    """What ``browser_flow`` uses of Twisted's TCP transport."""

    SEND_LIMIT = 128 * KIB

    def __init__(self, reactor: FakeReactor, producer: object | None) -> None:
        self.reactor = reactor
        self.producer = producer
        self.producerPaused = False
        self.reading_resumed = False

    def registerProducer(self, producer: object, streaming: bool) -> None:
        assert self.producer is None
        assert streaming
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def resumeProducing(self) -> None:
        self.reading_resumed = True


class FakeDaphne:
    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        protocol.sent.append(message)


class FakeProtocol:
    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.sent: list[dict[str, Any]] = []


class SessionWrapper:
    """Like channels' session middleware: wraps ``send`` and keeps the one it wraps as ``real_send``."""

    def __init__(self, send: browser_flow.Send) -> None:
        self.real_send = send

    async def send(self, message: dict[str, Any]) -> None:
        await self.real_send(message)


def daphne_send(transport: FakeTransport) -> tuple[browser_flow.Send, FakeProtocol]:
    protocol = FakeProtocol(transport)
    return SessionWrapper(functools.partial(FakeDaphne().handle_reply, protocol)).send, protocol


class Switch:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


def test_daphnes_send_is_found_under_the_session_wrapper():
    async def main() -> None:
        send, protocol = daphne_send(FakeTransport(FakeReactor(None), None))
        found = browser_flow.server_send(send)
        assert isinstance(found, functools.partial)
        await found({"type": "websocket.send", "bytes": b"x"})
        assert protocol.sent == [{"type": "websocket.send", "bytes": b"x"}]

    asyncio.run(main())


def test_another_servers_send_is_left_alone():
    async def other_send(message: dict[str, Any]) -> None:
        pass

    assert browser_flow.server_send(other_send) is None
    assert browser_flow.server_send(SessionWrapper(other_send).send) is None
    assert browser_flow.server_send(functools.partial(other_send)) is None


def test_the_producer_replaces_daphnes_http_channel_and_pauses_once():
    async def main() -> None:
        channel = HTTPChannel()
        transport = FakeTransport(FakeReactor(asyncio.get_running_loop()), channel)
        transport.producerPaused = True  # the channel had stopped reading from the browser
        switch = Switch()
        send, _protocol = daphne_send(transport)
        flow = browser_flow.attach(send, pause=switch.pause, resume=switch.resume)
        assert flow is not None
        assert transport.producer is flow
        assert transport.reading_resumed
        assert transport.SEND_LIMIT == browser_flow.BROWSER_SEND_LIMIT_BYTES
        flow.pauseProducing()
        flow.pauseProducing()  # Twisted pauses on every write while the buffer is full
        flow.resumeProducing()
        flow.stopProducing()
        assert switch.calls == ["pause", "resume"]
        flow.detach()
        assert transport.producer is None

    asyncio.run(main())


def test_without_the_expected_structure_there_is_no_flow_control():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        switch = Switch()
        cases = [
            FakeTransport(FakeReactor(None), None),  # Twisted not on this loop
            FakeTransport(FakeReactor(asyncio.new_event_loop()), None),
            FakeTransport(FakeReactor(loop), object()),  # someone else's producer
        ]
        for transport in cases:
            send, _protocol = daphne_send(transport)
            assert browser_flow.attach(send, pause=switch.pause, resume=switch.resume) is None
            assert transport.SEND_LIMIT == FakeTransport.SEND_LIMIT
        cases[1].reactor._asyncioEventloop.close()
        assert cases[2].producer is not None

        async def communicator_send(message: dict[str, Any]) -> None:
            pass

        assert browser_flow.attach(communicator_send, pause=switch.pause, resume=switch.resume) is None

    asyncio.run(main())

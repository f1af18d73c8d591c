"""The browser's side of the console benchmark: a byte pipe over websocket messages or TCP reads,
noVNC's part of the RFB handshake, and one measured sample (a stream, then round trips)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from benchmarks.console_peers import HEADER, SERVER_INIT
from benchmarks.processes import START_TIMEOUT_SECONDS, Usage, usage
from provisioning.consoles import rfb

MIB = 1024 * 1024
WARMUP_BYTES = 8 * MIB
WARMUP_PINGS = 50
PING_BYTES = 16
READ_BYTES = 256 * 1024  # the direct path's reads


class Pipe:
    """A byte stream over websocket messages or TCP reads: exact reads, and counted discards."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], receive: Callable[[], Awaitable[bytes]]) -> None:
        self.send = send
        self._receive = receive
        self._pending = bytearray()

    async def read_exactly(self, count: int) -> bytes:
        while len(self._pending) < count:
            piece = await self._receive()
            if not piece:
                raise EOFError("the stream ended")
            self._pending += piece
        data = bytes(self._pending[:count])
        del self._pending[:count]
        return data

    async def discard(self, count: int) -> int:
        """Take ``count`` bytes without keeping them; returns how many pieces (messages, reads) carried them."""
        left, pieces = count - len(self._pending), 0
        self._pending.clear()
        while left > 0:
            piece = await self._receive()
            if not piece:
                raise EOFError("the stream ended")
            pieces += 1
            left -= len(piece)
        if left < 0:
            self._pending += piece[left:]
        return pieces


def websocket_pipe(ws: ClientConnection) -> Pipe:
    async def receive() -> bytes:
        data = await ws.recv()
        assert isinstance(data, bytes), "a text frame on a binary console"
        return data

    return Pipe(ws.send, receive)


@dataclass(frozen=True)
class Sample:
    mib_per_s: float
    pieces: int  # websocket messages (or TCP reads) that carried the stream
    used: dict[str, Usage]  # during the stream, by "proxy" (its processes), "client" (this one) and "server"
    rtts_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.rtts_ms)

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.rtts_ms, n=100, method="inclusive")[98]


async def stream(pipe: Pipe, total: int) -> int:
    await pipe.send(HEADER.pack(b"S", total))
    return await pipe.discard(total)


async def ping(pipe: Pipe, payload: bytes) -> float:
    started = time.perf_counter()
    await pipe.send(HEADER.pack(b"E", len(payload)) + payload)
    echoed = await pipe.read_exactly(len(payload))
    elapsed = time.perf_counter() - started
    if echoed != payload:
        raise SystemExit("the echo came back changed")
    return elapsed * 1000


async def exercise(pipe: Pipe, *, total: int, pings: int, groups: dict[str, int | None]) -> Sample:
    """After the security handshake: ClientInit/ServerInit, warm-up, the stream, the round trips."""
    await pipe.send(b"\x01")  # ClientInit, shared
    if await pipe.read_exactly(len(SERVER_INIT)) != SERVER_INIT:
        raise SystemExit("ServerInit came through changed")
    await stream(pipe, WARMUP_BYTES)
    for _ in range(WARMUP_PINGS):
        await ping(pipe, os.urandom(PING_BYTES))
    before = {name: usage(group) for name, group in groups.items()}
    started = time.perf_counter()
    pieces = await stream(pipe, total)
    seconds = time.perf_counter() - started
    used = {name: usage(group) - before[name] for name, group in groups.items()}
    rtts = [await ping(pipe, os.urandom(PING_BYTES)) for _ in range(pings)]
    return Sample(mib_per_s=total / MIB / seconds, pieces=pieces, used=used, rtts_ms=rtts)


async def browser_security(pipe: Pipe) -> None:
    """noVNC's side of the proxy's handshake: version 3.8, and the one type offered, None."""
    if rfb.parse_version(await pipe.read_exactly(12)) != 8:
        raise SystemExit("the proxy did not offer RFB 3.8")
    await pipe.send(rfb.version_message(8))
    offered = await pipe.read_exactly((await pipe.read_exactly(1))[0])
    if offered != bytes([rfb.SECURITY_NONE]):
        raise SystemExit(f"the proxy offered security types {list(offered)}, not None alone")
    await pipe.send(bytes([rfb.SECURITY_NONE]))
    if await pipe.read_exactly(4) != b"\0\0\0\0":
        raise SystemExit("the proxy refused security type None")


def _connect(url: str) -> connect:
    return connect(
        url,
        subprotocols=[Subprotocol("binary")],
        compression=None,
        proxy=None,
        max_size=None,
        ping_interval=None,
        open_timeout=START_TIMEOUT_SECONDS,
    )


async def through_websocket(
    url: str, *, rfb_security: bool, total: int, pings: int, groups: dict[str, int | None]
) -> Sample:
    async with _connect(url) as ws:
        pipe = websocket_pipe(ws)
        if rfb_security:
            await browser_security(pipe)
        return await exercise(pipe, total=total, pings=pings, groups=groups)


async def direct(port: int, *, total: int, pings: int, groups: dict[str, int | None]) -> Sample:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)  # asyncio sets TCP_NODELAY

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def receive() -> bytes:
        return await reader.read(READ_BYTES)

    try:
        return await exercise(Pipe(send, receive), total=total, pings=pings, groups=groups)
    finally:
        writer.close()
        await writer.wait_closed()

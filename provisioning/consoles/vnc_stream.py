"""The VM's VNC connection once the proxy has authenticated: an ``asyncio.Protocol`` on the same socket.

The RFB handshake needs exact reads, so it runs on a StreamReader/StreamWriter. After it the proxy
only copies bytes, and there a protocol is much cheaper than a loop of ``StreamReader.read``: each
piece the transport reads (up to 256 KiB, asyncio's read size) is handed on as it is, without being
buffered, copied and read out again. ``VncStream.take_over`` swaps the protocol on the transport.

Reading from the VM stops while something ``hold``s the stream: its own queue of pieces not yet taken
(``QUEUE_LIMIT_BYTES``), or the browser's side when its socket cannot take more (``browser_flow``).
"""

from __future__ import annotations

import asyncio
from collections import deque

# A websocket message carries one piece; a larger piece (only what the StreamReader held) is cut.
MAX_PIECE_BYTES = 256 * 1024
# Pieces read but not yet taken; past this the VM is not read until the consumer catches up.
QUEUE_LIMIT_BYTES = 1024 * 1024
# A VM that does not take the last bytes written to it does not keep the socket open longer than this.
CLOSE_TIMEOUT_SECONDS = 5
_QUEUE_FULL = "queue"


class VncStream(asyncio.Protocol):
    """Bytes from the VM as pieces (``read``), bytes to it with flow control (``write``), and ``close``."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pieces: deque[bytes] = deque()
        self._queued_bytes = 0
        self._at_end = False
        self._piece_waiter: asyncio.Future[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._holds: set[str] = set()
        self._handshake_writer: asyncio.StreamWriter | None = None

    @classmethod
    def take_over(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> VncStream:
        """The connection behind ``reader``/``writer`` as a ``VncStream``; the pair is not used again.

        Nothing awaits in here, so no byte can arrive between taking what the reader holds and the swap.
        """
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        stream = cls(transport)
        # A StreamWriter closes its transport when it is collected: it lives as long as the stream.
        stream._handshake_writer = writer
        held = _take_buffered(reader)
        ended, lost = reader.at_eof() or reader.exception() is not None, transport.is_closing()
        transport.set_protocol(stream)
        if held:
            stream.data_received(held)
        if ended:
            stream.eof_received()
        if lost:
            stream.connection_lost(reader.exception())
        # The StreamReader may have paused reading when its buffer was full; this stream decides now.
        if not stream._holds and not lost:
            transport.resume_reading()
        return stream

    # --- asyncio.Protocol ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._pieces.append(data)
        self._queued_bytes += len(data)
        if self._queued_bytes > QUEUE_LIMIT_BYTES:
            self.hold(_QUEUE_FULL)
        self._wake_reader()

    def eof_received(self) -> bool:
        self._at_end = True
        self._wake_reader()
        return False  # RFB has no use for a half-closed connection: let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self._at_end = True
        self._wake_reader()
        self._writable.set()  # a writer waiting for room finds the connection gone
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # --- the consumer's side -----------------------------------------------------------------------

    async def read(self) -> bytes | None:
        """The next piece the VM sent (at most ``MAX_PIECE_BYTES``); None once it has closed."""
        while not self._pieces:
            if self._at_end:
                return None
            self._piece_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._piece_waiter
            finally:
                self._piece_waiter = None
        piece = self._pieces.popleft()
        if len(piece) > MAX_PIECE_BYTES:
            piece, rest = piece[:MAX_PIECE_BYTES], piece[MAX_PIECE_BYTES:]
            self._pieces.appendleft(rest)
        self._queued_bytes -= len(piece)
        if self._queued_bytes <= QUEUE_LIMIT_BYTES:
            self.release(_QUEUE_FULL)
        return piece

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the VM; waits while the transport holds more than its high-water mark."""
        if self._transport.is_closing():
            raise ConnectionResetError("the VNC connection is closed")
        self._transport.write(data)
        await self._writable.wait()

    def hold(self, reason: str) -> None:
        """Stop reading from the VM until every ``reason`` given is released."""
        if not self._holds and not self._transport.is_closing():
            self._transport.pause_reading()
        self._holds.add(reason)

    def release(self, reason: str) -> None:
        if reason not in self._holds:
            return
        self._holds.discard(reason)
        if not self._holds and not self._transport.is_closing():
            self._transport.resume_reading()

    async def close(self) -> None:
        """Close the connection, and wait (a little) until it is closed."""
        self._transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), CLOSE_TIMEOUT_SECONDS)
        except TimeoutError:
            self._transport.abort()

    def _wake_reader(self) -> None:
        waiter = self._piece_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _take_buffered(reader: asyncio.StreamReader) -> bytes:
    """What ``reader`` has received but nobody has read yet, taken out of it.

    StreamReader offers no way to take its buffer without waiting; its buffer is a bytearray.
    """
    buffer = getattr(reader, "_buffer", None)
    if not isinstance(buffer, bytearray):
        return b""
    held = bytes(buffer)
    buffer.clear()
    return held


__all__ = ["MAX_PIECE_BYTES", "QUEUE_LIMIT_BYTES", "VncStream"]

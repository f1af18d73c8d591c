"""The screen console's websocket (``/ws/consoles/vnc/?ticket=…``): noVNC's side of a VM's screen.

The browser gets RFB with security type None; the proxy logs in to the VM's password-protected VNC
server itself (``provisioning.consoles.rfb``) and relays the bytes, paced both ways (see
``provisioning.consoles.consumers``).
"""

from __future__ import annotations

import asyncio

from provisioning.consoles import backends, rfb
from provisioning.consoles.consumers import ConsoleConsumer
from provisioning.consoles.tickets import CLOSE_FORBIDDEN, ConsoleGrant
from provisioning.consoles.vnc_stream import VncStream
from provisioning.models import ConsoleTicket

# Frames from the browser waiting to be written to the VM; when full, the consumer stops reading the socket.
BROWSER_QUEUE_FRAMES = 64
# Why reading from the VNC server is held while the browser's transport is full.
BROWSER_FULL = "browser"


class BrowserBytes:
    """Frames from the browser as a byte stream: exact reads for the handshake, chunks afterwards."""

    def __init__(self) -> None:
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=BROWSER_QUEUE_FRAMES)
        self._pending = b""
        self._closed = False

    async def put(self, data: bytes) -> None:
        if not self._closed:
            await self._frames.put(data)

    def close(self) -> None:
        """No more frames: readers get the end, and a ``put`` waiting for room goes through."""
        self._closed = True
        while not self._frames.empty():
            self._frames.get_nowait()
        self._frames.put_nowait(None)

    async def read_exactly(self, count: int) -> bytes:
        while len(self._pending) < count:
            frame = await self._frames.get()
            if frame is None:
                raise asyncio.IncompleteReadError(self._pending, count)
            self._pending += frame
        data, self._pending = self._pending[:count], self._pending[count:]
        return data

    async def next_chunk(self) -> bytes | None:
        """What the browser sent next; None once it has gone."""
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return await self._frames.get()


class VncConsoleConsumer(ConsoleConsumer):
    """noVNC's side of a VM's screen: RFB with security type None, relayed to the real, password-protected server."""

    kind = ConsoleTicket.Kind.VNC
    _vnc: VncStream | None = None
    _browser: BrowserBytes

    async def open_console(self, grant: ConsoleGrant) -> None:
        self._browser = BrowserBytes()
        self._vnc = await backends.open_vnc(grant)

    async def from_browser(self, data: bytes) -> None:
        await self._browser.put(data)

    async def run_console(self) -> None:
        vnc = self._vnc
        assert vnc is not None
        try:
            await rfb.offer_no_auth_to_client(self._browser.read_exactly, self.send_to_browser)
        except (rfb.RfbError, asyncio.IncompleteReadError) as exc:
            await self._end(f"browser handshake failed: {exc}", close_code=CLOSE_FORBIDDEN)
            return
        upstream = asyncio.create_task(self._browser_to_vm(vnc))
        try:
            ended = await self._vm_to_browser(vnc)
        finally:
            upstream.cancel()
        await self._console_ended(ended)

    async def _browser_to_vm(self, vnc: VncStream) -> None:
        while (data := await self._browser.next_chunk()) is not None:
            await vnc.write(data)

    async def _vm_to_browser(self, vnc: VncStream) -> str:
        # Each piece the VM's socket gave is one message: no reassembly, no extra copy.
        while (data := await vnc.read()) is not None:
            self.bytes_from_vm += len(data)
            await self.send_to_browser(data)
        return "the VNC server closed the connection"

    def pause_console(self) -> None:
        if self._vnc is not None:
            self._vnc.hold(BROWSER_FULL)

    def resume_console(self) -> None:
        if self._vnc is not None:
            self._vnc.release(BROWSER_FULL)

    async def close_console(self) -> None:
        if hasattr(self, "_browser"):
            self._browser.close()
        vnc, self._vnc = self._vnc, None
        if vnc is not None:
            await vnc.close()


__all__ = ["BrowserBytes", "VncConsoleConsumer"]

"""The serial console's websocket (``/ws/consoles/serial/?ticket=…``), shown with xterm.js.

The VM's serial port is reached through libvirt's own connection (``virDomainOpenConsole`` and a
stream, ``provisioning.consoles.backends``), so it works for remote hosts with no port open on them.

Binary messages carry the VM's bytes. Text messages are the portal's own notes, as JSON, never the
VM's: on opening, ``{"type": "backlog", "bytes": N, "truncated": …, "available": …, "reason": …}``
announces the N bytes that follow (the end of the console's log: what the guest wrote before the
console was opened, ``provisioning.consoles.backlog``), and ``{"type": "live"}`` says that what comes
after it is live.
"""

from __future__ import annotations

import asyncio
import json
import threading

from provisioning.consoles import backends
from provisioning.consoles.backlog import ConsoleBacklog
from provisioning.consoles.consumers import ConsoleConsumer
from provisioning.consoles.tickets import ConsoleGrant
from provisioning.models import ConsoleTicket

# Live output already read when the backlog arrives is compared with the backlog's end over at most
# this many bytes: the log was read after the console was attached, so it may hold them too.
OVERLAP_LIMIT_BYTES = 4096


def overlap(backlog: bytes, live: bytes) -> int:
    """How many bytes at the start of ``live`` the end of ``backlog`` holds already (0 when none)."""
    for size in range(min(len(live), len(backlog), OVERLAP_LIMIT_BYTES), 0, -1):
        if backlog.endswith(live[:size]):
            return size
    return 0


# How long the first live output is waited for, to compare it with the log's end.
FIRST_PIECES_SECONDS = 0.2


async def _first_pieces(output: asyncio.Queue[bytes]) -> list[bytes]:
    """What the reading thread hands over within ``FIRST_PIECES_SECONDS`` (ending with b"" if the console ended)."""
    pieces: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + FIRST_PIECES_SECONDS
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            piece = await asyncio.wait_for(output.get(), left)
        except TimeoutError:
            break
        pieces.append(piece)
        if not piece:
            break
    return pieces


class SerialConsoleConsumer(ConsoleConsumer):
    """xterm.js's side of a VM's serial console, reached through libvirt's own connection."""

    kind = ConsoleTicket.Kind.SERIAL
    _console: backends.SerialConsole | None = None
    _stop: threading.Event
    _browser_ready: asyncio.Event

    async def open_console(self, grant: ConsoleGrant) -> None:
        self._stop = threading.Event()
        self._browser_ready = asyncio.Event()
        self._browser_ready.set()
        self._console = await asyncio.to_thread(backends.open_serial, grant)

    async def from_browser(self, data: bytes) -> None:
        console = self._console
        if console is not None:
            # Awaited: frames are written in order, and a console that does not take them holds the socket.
            await asyncio.to_thread(console.write, data)

    async def run_console(self) -> None:
        console = self._console
        assert console is not None
        assert self.grant is not None
        # Read before the reading thread starts: the log comes over the console's own connection, and
        # libvirt keeps what the guest writes meanwhile in the console's stream, for the thread to read.
        backlog = await asyncio.to_thread(
            console.backlog, pool=self.grant.storage_pool, name=self.grant.console_log_name
        )
        loop = asyncio.get_running_loop()
        output: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
        reader = threading.Thread(
            target=backends.read_serial_output,
            args=(console, output, loop, self._stop),
            name="serial-console",
            daemon=True,
        )
        reader.start()
        # The log may hold the first live bytes too (written after the attach, before the read):
        # what came first is compared with the log's end and sent once.
        early = await _first_pieces(output)
        await self._send_backlog(backlog)
        live_start = b"".join(early)
        fresh = live_start[overlap(backlog.data, live_start) :]
        if fresh:
            await self._relay(fresh)
        ended = bool(early) and not early[-1]
        if not ended:
            while data := await output.get():
                await self._relay(data)
        await self._console_ended("the serial console ended")

    async def _send_backlog(self, backlog: ConsoleBacklog) -> None:
        await self.send_note(
            {
                "type": "backlog",
                "bytes": len(backlog.data),
                "truncated": backlog.truncated,
                "available": backlog.available,
                "reason": backlog.reason,
            }
        )
        if backlog.data:
            await self.send_to_browser(backlog.data)
        await self.send_note({"type": "live"})

    async def _relay(self, data: bytes) -> None:
        self.bytes_from_vm += len(data)
        # While the browser's side is full the queue fills and holds the reading thread: libvirt's stream waits.
        await self._browser_ready.wait()
        await self.send_to_browser(data)

    async def send_note(self, note: dict[str, object]) -> None:
        """One of the portal's own notes (a text message), never mistaken for the VM's bytes (binary)."""
        assert self._browser_send is not None
        await self._browser_send({"type": "websocket.send", "text": json.dumps(note)})

    def pause_console(self) -> None:
        self._browser_ready.clear()

    def resume_console(self) -> None:
        self._browser_ready.set()

    async def close_console(self) -> None:
        self._stop.set()
        console, self._console = self._console, None
        if console is not None:
            await asyncio.to_thread(console.close)


__all__ = ["OVERLAP_LIMIT_BYTES", "SerialConsoleConsumer", "overlap"]

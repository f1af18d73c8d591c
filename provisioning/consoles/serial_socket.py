"""The serial console's websocket (``/ws/consoles/serial/?ticket=…``), shown with xterm.js.

The VM's serial port is reached through libvirt's own connection (``virDomainOpenConsole`` and a
stream, ``provisioning.consoles.backends``), so it works for remote hosts with no port open on them.
"""

from __future__ import annotations

import asyncio
import threading

from provisioning.consoles import backends
from provisioning.consoles.consumers import ConsoleConsumer
from provisioning.consoles.tickets import ConsoleGrant
from provisioning.models import ConsoleTicket


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
        loop = asyncio.get_running_loop()
        output: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
        reader = threading.Thread(
            target=backends.read_serial_output,
            args=(console, output, loop, self._stop),
            name="serial-console",
            daemon=True,
        )
        reader.start()
        while data := await output.get():
            self.bytes_from_vm += len(data)
            # While the browser's side is full the queue fills and holds the reading thread: libvirt's stream waits.
            await self._browser_ready.wait()
            await self.send_to_browser(data)
        await self._console_ended("the serial console ended")

    def pause_console(self) -> None:
        self._browser_ready.clear()

    def resume_console(self) -> None:
        self._browser_ready.set()

    async def close_console(self) -> None:
        self._stop.set()
        console, self._console = self._console, None
        if console is not None:
            await asyncio.to_thread(console.close)


__all__ = ["SerialConsoleConsumer"]

"""Reaching a VM's console from the proxy: its VNC server over TCP, its serial console over libvirt.

The consumers call these through module attributes, so tests can put a fake console in their place.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import suppress

from portal import errors
from provisioning.consoles import rfb
from provisioning.consoles.backlog import ConsoleBacklog, read_backlog
from provisioning.consoles.tickets import ConsoleGrant
from provisioning.consoles.vnc_stream import VncStream
from provisioning.drivers import ConsoleStream, DriverError, open_driver
from provisioning.host_uris import check_uri

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10


class ConsoleUnreachable(Exception):
    """The VM's console could not be opened (connection refused, authentication failed, host down).

    The message is in the portal's words and may be shown and audited; ``detail`` (an OS or libvirt
    error text, which can quote addresses and files) is for the operators' log only.
    """

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


async def open_vnc(grant: ConsoleGrant) -> VncStream:
    """A connection to the VM's VNC server on the host's management address, already authenticated.

    What follows on it is the server's side of ``ClientInit``/``ServerInit``, as after any handshake.
    The handshake runs on asyncio's streams; the bytes after it flow through a ``VncStream``.
    """
    if grant.vnc_port is None:
        raise ConsoleUnreachable("the instance has no VNC server")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(grant.console_address, grant.vnc_port), CONNECT_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError) as exc:
        raise ConsoleUnreachable("cannot reach the VNC server", detail=str(exc)) from exc

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        await asyncio.wait_for(
            rfb.authenticate_to_server(reader.readexactly, write, password=grant.vnc_password),
            CONNECT_TIMEOUT_SECONDS,
        )
    except (rfb.RfbError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
        raise ConsoleUnreachable("VNC handshake failed", detail=str(exc)) from exc
    return VncStream.take_over(reader, writer)


class SerialConsole:
    """A domain's serial console with the libvirt connection it travels in; ``close`` ends both."""

    def __init__(self, *, uri: str, domain: str) -> None:
        self._driver = open_driver(uri)
        try:
            self._stream: ConsoleStream = self._driver.open_console(name=domain)
        except BaseException:
            self._driver.close()
            raise

    def read(self, max_bytes: int) -> bytes:
        return self._stream.read(max_bytes)

    def backlog(self, *, pool: str, name: str) -> ConsoleBacklog:
        """The end of the console's log, read over the same connection (``name`` "": the host keeps none)."""
        if not name:
            return ConsoleBacklog(b"", False, 0, available=False, reason="the host keeps no console log for it")
        return read_backlog(driver=self._driver, pool=pool, name=name)

    def write(self, data: bytes) -> None:
        self._stream.write(data)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._driver.close()


def read_serial_output(
    console: SerialConsole,
    output: asyncio.Queue[bytes],
    loop: asyncio.AbstractEventLoop,
    stop: threading.Event,
) -> None:
    """The serial console's reading thread: blocks on the console, hands each piece to ``loop`` and waits for room.

    An empty piece (the console ended) is the last. ``stop`` ends the thread without handing anything more.
    """
    while not stop.is_set():
        try:
            data = console.read(4096)
        except Exception as exc:
            logger.info("serial console read ended: %s", exc)
            data = b""
        if stop.is_set():
            return
        try:
            future = asyncio.run_coroutine_threadsafe(output.put(data), loop)
        except RuntimeError:  # the event loop is gone: the session ended
            return
        while not stop.is_set():
            try:
                future.result(timeout=0.5)  # a full queue holds this thread: backpressure to libvirt
                break
            except TimeoutError:
                continue
        else:
            future.cancel()
        if not data:
            return


def open_serial(grant: ConsoleGrant) -> SerialConsole:
    """Attach to the domain's serial console through its own libvirt connection. Blocking: run in a thread."""
    try:
        # Checked on every connection, as the services' driver_for does: the row may predate the rules.
        check_uri(grant.host_uri)
    except errors.Invalid as exc:
        raise ConsoleUnreachable(
            "cannot open the serial console", detail=f"the host's URI is refused: {exc.detail}"
        ) from None
    try:
        return SerialConsole(uri=grant.host_uri, domain=grant.domain_name)
    except DriverError as exc:
        raise ConsoleUnreachable("cannot open the serial console", detail=exc.message) from exc


__all__ = ["ConsoleUnreachable", "SerialConsole", "open_serial", "open_vnc", "read_serial_output"]

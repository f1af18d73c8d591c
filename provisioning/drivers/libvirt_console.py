"""Serial consoles through libvirt's own connection: ``virDomainOpenConsole`` into a libvirt stream.

Nothing is opened on the host: the console's bytes travel inside the libvirt connection, so the same
code serves ``qemu:///system`` and remote ``qemu+ssh://`` or ``qemu+tls://`` hosts.

The stream is a blocking one. A non-blocking stream only receives data while a libvirt event loop
runs in the process, and registering one would change every other connection of the process
(keepalive, reconnects); a blocking ``recv`` pumps the connection itself. One thread reads, any
other thread may write or close meanwhile: libvirt's RPC client lets several threads share a
connection, and aborting the stream wakes the reader.
"""

from __future__ import annotations

import logging
import threading
from contextlib import suppress

import libvirt

from provisioning.drivers.base import ConsoleStream, DriverError
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import Subject, translate_error

logger = logging.getLogger(__name__)

_EAGAIN = -2  # what recv/send answer on a non-blocking stream with nothing to do; ours blocks


class LibvirtConsoleStream:
    """One attached serial console. ``read`` in one thread; ``write`` and ``close`` from any."""

    def __init__(self, *, stream: libvirt.virStream, uri: str, domain: str) -> None:
        self._stream = stream
        self._uri = uri
        self._domain = domain
        self._closed = threading.Event()
        self._close_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._uri!r}, {self._domain!r})"

    def _error(self, exc: libvirt.libvirtError, action: str) -> DriverError:
        return translate_error(
            exc, uri=self._uri, action=f"{action} the serial console of '{self._domain}'", subject=Subject()
        )

    def read(self, max_bytes: int) -> bytes:
        if self._closed.is_set():
            return b""
        try:
            data = self._stream.recv(max_bytes)
        except libvirt.libvirtError as exc:
            if self._closed.is_set():
                return b""  # our own close woke the read up
            raise self._error(exc, "read from") from exc
        if isinstance(data, int):  # -2 cannot happen on a blocking stream; -1 is raised as an error
            return b"" if data != _EAGAIN else self.read(max_bytes)
        return bytes(data)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._closed.is_set():
            try:
                sent = self._stream.send(bytes(view))
            except libvirt.libvirtError as exc:
                if self._closed.is_set():
                    return
                raise self._error(exc, "write to") from exc
            if sent < 0:
                continue
            view = view[sent:]

    def close(self) -> None:
        with self._close_lock:
            if self._closed.is_set():
                return
            self._closed.set()
            # Abort, not finish: the guest has nothing to flush to us, and abort wakes a blocked recv.
            with suppress(libvirt.libvirtError):
                self._stream.abort()


class LibvirtConsoles(LibvirtConnection):
    """Serial consoles of one host's domains (the console part of ``LibvirtDriver``)."""

    def open_console(self, *, name: str) -> ConsoleStream:
        """Attach to the domain's first serial console, taking it over from any other session.

        Taking over (``VIR_DOMAIN_CONSOLE_FORCE``) is what a user who reloads the page expects; the
        session that loses the console reads ``b""`` and ends.
        """
        subject = Subject(domain=name)
        with self._call(f"open the serial console of domain '{name}'", subject) as conn:
            domain = conn.lookupByName(name)
            stream = conn.newStream(0)
            try:
                domain.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
            except BaseException:
                with suppress(libvirt.libvirtError):
                    stream.abort()
                raise
        return LibvirtConsoleStream(stream=stream, uri=self.uri, domain=name)


__all__ = ["LibvirtConsoleStream", "LibvirtConsoles"]

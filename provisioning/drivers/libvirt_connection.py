"""One lazily opened, self-healing libvirt connection per driver, and what its host can do.

The connection opens on first use and is shared between threads (libvirt connections are safe to
share). A connection found dead is reopened once; a call that loses it raises ``HostUnreachable``
and the call after it reconnects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import libvirt

from provisioning.drivers.base import HostCapabilities, HostUnreachable, InvalidRequest
from provisioning.drivers.libvirt_errors import NO_SUBJECT, Subject, discard_libvirt_error, open_error, translate_error

logger = logging.getLogger(__name__)

Connect = Callable[[str], libvirt.virConnect]
"""Opens a libvirt connection for a URI; ``libvirt.open`` unless the caller needs another way in."""

# libvirt's in-memory test driver: its volumes hold no bytes (and it cannot upload) and its guests
# never run, so nothing of theirs binds a host port.
_SIMULATED = HostCapabilities(stores_volume_data=False, guests_bind_host_ports=False)
_REAL = HostCapabilities(stores_volume_data=True, guests_bind_host_ports=True)


def capabilities_of(conn: libvirt.virConnect) -> HostCapabilities:
    """What the host behind ``conn`` can do. The only place that knows about libvirt's test driver."""
    # libvirt reports "TEST" here, whatever case its documentation uses.
    driver_type: str = conn.getType()
    return _SIMULATED if driver_type.lower() == "test" else _REAL


@dataclass(frozen=True)
class _Session:
    """An open connection with the capabilities read when it opened, so the two never disagree."""

    conn: libvirt.virConnect
    capabilities: HostCapabilities


class LibvirtConnection:
    """The connection handling every part of the libvirt driver shares.

    ``connect`` is how the connection is opened: ``libvirt.open`` by default. Pass another opener for
    hosts that need credentials (``libvirt.openAuth``) or a read-only connection, or to wrap the
    connection in tests.
    """

    def __init__(self, uri: str, *, connect: Connect = libvirt.open) -> None:
        if not isinstance(uri, str) or not uri:
            raise InvalidRequest(f"invalid libvirt URI {uri!r}")
        self.uri = uri
        self._connect = connect
        self._session: _Session | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        # A dead connection cannot be closed any further.
        with suppress(libvirt.libvirtError):
            session.conn.close()

    def _open(self) -> _Session:
        # Global and idempotent; registering on every open keeps importing this module side-effect free.
        libvirt.registerErrorHandler(discard_libvirt_error, None)
        try:
            conn = self._connect(self.uri)
        except libvirt.libvirtError as exc:
            raise open_error(exc, self.uri) from exc
        try:
            return _Session(conn, capabilities_of(conn))
        except libvirt.libvirtError as exc:
            with suppress(libvirt.libvirtError):
                conn.close()
            raise open_error(exc, self.uri) from exc

    @staticmethod
    def _is_alive(conn: libvirt.virConnect) -> bool:
        try:
            return bool(conn.isAlive() == 1)
        except libvirt.libvirtError:
            return False

    def _current_session(self) -> _Session:
        with self._lock:
            if self._session is not None and not self._is_alive(self._session.conn):
                logger.warning("host %s: libvirt connection lost, reconnecting", self.uri)
                self._close_locked()
            if self._session is None:
                self._session = self._open()
            return self._session

    def _capabilities(self) -> HostCapabilities:
        """What the host can do, as read when the current connection opened (opening it if needed)."""
        return self._current_session().capabilities

    def _forget(self, conn: libvirt.virConnect) -> None:
        """Drop a connection that failed, unless another thread already replaced it."""
        with self._lock:
            if self._session is not None and self._session.conn is conn:
                self._close_locked()

    @contextmanager
    def _call(self, action: str, subject: Subject = NO_SUBJECT) -> Iterator[libvirt.virConnect]:
        """Yield the connection; turn any ``libvirtError`` raised inside into a ``DriverError``."""
        conn = self._current_session().conn
        try:
            yield conn
        except libvirt.libvirtError as exc:
            error = translate_error(exc, uri=self.uri, action=action, subject=subject)
            if isinstance(error, HostUnreachable):
                # Without an event loop (so without keepalive) isAlive() only learns of a dead socket
                # from a failed call like this one; forgetting the connection makes the next call
                # reconnect.
                self._forget(conn)
            raise error from exc


__all__ = ["Connect", "LibvirtConnection", "capabilities_of"]

"""Loopback stand-ins for a guest behind a published port, as QEMU's user-mode forward shows it.

QEMU listens on the host port from the moment the domain starts and accepts every connection; while
the guest does not listen yet it closes the connection without a word (or, before the guest has a
network, leaves it silent). ``FakeGuestPort`` does the same until ``answering`` is set, then answers
like a web server. Every connection it saw is counted.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

Handler = Callable[[socket.socket], None]


def close_silently(conn: socket.socket) -> None:
    conn.close()


class StaySilent:
    """Keeps every connection open without a word (a guest that has no network yet), until closed."""

    def __init__(self) -> None:
        self.held: list[socket.socket] = []

    def __call__(self, conn: socket.socket) -> None:
        self.held.append(conn)

    def close(self) -> None:
        for conn in self.held:
            conn.close()


def answer_http(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.settimeout(2)
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    conn.close()


class FakeGuestPort:
    """A listener on ``address`` (a free port): closes connections until ``answering``, then answers HTTP."""

    def __init__(self, address: str = "127.0.0.1", *, before: Handler = close_silently) -> None:
        self.answering = False
        self.before = before
        self.after: Handler = answer_http
        self.connections = 0
        self.on_connect: Callable[[], None] | None = None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((address, 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            if self.on_connect is not None:
                self.on_connect()
            (self.after if self.answering else self.before)(conn)

    def __enter__(self) -> FakeGuestPort:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)


def free_loopback_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

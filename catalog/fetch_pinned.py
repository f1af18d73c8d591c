"""HTTP connections pinned to an address already checked: the host name goes in the request (and in
TLS, for the certificate and SNI) while the socket connects to the address the guard resolved and
allowed, so no second name lookup can swap it (DNS rebinding). Every socket step waits at most until
the request's deadline (``catalog.fetch_deadline``)."""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any, cast

from catalog.fetch_deadline import Deadline, DeadlineSocket, DeadlineSSLSocket

# An address to connect to: its family and the sockaddr getaddrinfo gave.
Target = tuple[socket.AddressFamily, tuple[Any, ...]]


def _connect(target: Target, deadline: Deadline) -> DeadlineSocket:
    family, sockaddr = target
    sock = DeadlineSocket(family, socket.SOCK_STREAM)
    sock.deadline = deadline
    try:
        sock.settimeout(deadline.next_timeout())
        sock.connect(sockaddr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


class PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, target: Target, deadline: Deadline) -> None:
        super().__init__(host, port, timeout=deadline.idle_seconds)
        self._target = target
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = _connect(self._target, self._deadline)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, target: Target, deadline: Deadline) -> None:
        context = ssl.create_default_context()
        context.sslsocket_class = DeadlineSSLSocket
        super().__init__(host, port, timeout=deadline.idle_seconds, context=context)
        self._tls = context
        self._target = target
        self._deadline = deadline

    def connect(self) -> None:
        raw = _connect(self._target, self._deadline)
        # Certificate and SNI are checked against the name, while the socket goes to the checked address.
        wrapped = self._tls.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        sock = cast(DeadlineSSLSocket, wrapped)  # the context's sslsocket_class
        sock.deadline = self._deadline
        self.sock = sock
        sock.do_handshake()


__all__ = ["PinnedHTTPConnection", "PinnedHTTPSConnection", "Target"]

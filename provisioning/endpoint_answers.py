"""Whether a guest answers on a published port: the network half of the endpoint probe.

A bare TCP connect proves nothing here. With user-mode networking QEMU itself listens on the host
port from the moment the domain starts and accepts every connection; only then does it try the
guest, and it closes the accepted connection when the guest refuses it, or leaves it silent while
the guest has no network yet. So the probe says something in the port's protocol and counts the
guest as answering only once bytes come back: an HTTP status line (any status), a TLS handshake
(any outcome the peer speaks), PostgreSQL's reply to an SSL request, a server's banner.

Nothing here touches the database; callers give the address, which is always one the portal itself
published the port on (``provisioning.endpoints.bind_address``), never one a tenant supplied.
"""

from __future__ import annotations

import socket
import ssl

from provisioning.endpoints import TLS_PORTS

POSTGRES_PORT = 5432
# PostgreSQL's SSLRequest: it answers with one byte ('S' or 'N') before any authentication.
_POSTGRES_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
# How long the first of two hellos waits before the second is tried.
_FIRST_HELLO_SECONDS = 0.5


def _http_request(host_name: str) -> bytes:
    request = f"HEAD / HTTP/1.0\r\nHost: {host_name}\r\nUser-Agent: portal-endpoint-probe\r\n\r\n"
    return request.encode("ascii", "replace")


def _hellos(guest_port: int, host_name: str, timeout: float) -> list[tuple[bytes, float]]:
    """What to say on the port, in turn, and how long to wait for a reply to each."""
    if guest_port == POSTGRES_PORT:
        # The port's usual server answers its SSLRequest; a web server there (a demo's database tier
        # serves a page) waits for the end of a line instead, and gets one with a request after it.
        return [
            (_POSTGRES_SSL_REQUEST, min(_FIRST_HELLO_SECONDS, timeout)),
            (b"\r\n" + _http_request(host_name), timeout),
        ]
    return [(_http_request(host_name), timeout)]


def guest_answers(*, address: str, port: int, guest_port: int, host_name: str, timeout: float) -> bool:
    """Whether something behind ``address:port`` answers within ``timeout`` seconds (per step)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            if guest_port in TLS_PORTS:
                return _tls_answers(conn, host_name)
            for hello, wait in _hellos(guest_port, host_name, timeout):
                conn.settimeout(wait)
                conn.sendall(hello)
                try:
                    return bool(conn.recv(1))  # b"": closed with nothing said (QEMU gave up on the guest)
                except TimeoutError:
                    continue  # silent so far: say the next thing, if any
            return False
    except OSError:  # refused, reset, timed out: not answering (yet)
        return False


def _tls_answers(conn: socket.socket, host_name: str) -> bool:
    # Only whether a TLS server is there: the guest's certificate is the tenant's business, and
    # nothing is sent over the connection after the handshake.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(conn, server_hostname=host_name or None):
            return True
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return False  # closed without a word
    except ssl.SSLError:
        return True  # it refused our hello in TLS's words: a TLS server answers


__all__ = ["POSTGRES_PORT", "guest_answers"]

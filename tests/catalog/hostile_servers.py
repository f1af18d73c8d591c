"""Loopback servers that behave badly on purpose: drip bytes, demand credentials, record what they got."""

from __future__ import annotations

import base64
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class DripServer:
    """Answers every connection on 127.0.0.1 with ``response``, one byte every ``interval`` seconds.

    ``at_once`` bytes of it are sent straight away (e.g. the status line and headers, to drip only
    the body). With an empty ``response`` it accepts and says nothing, like a stuck TLS handshake.
    """

    def __init__(self, response: bytes, *, interval: float = 0.05, at_once: int = 0) -> None:
        self.response = response
        self.interval = interval
        self.at_once = at_once
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=self._drip, args=(connection,), daemon=True)
            worker.start()
            self._threads.append(worker)

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)  # the request
                connection.sendall(self.response[: self.at_once])
                for offset in range(self.at_once, len(self.response)):
                    if self._stop.wait(self.interval):
                        return
                    connection.sendall(self.response[offset : offset + 1])
                self._stop.wait()  # then hold the connection open
            except OSError:
                return  # the client gave up, as it should

    def __enter__(self) -> DripServer:
        thread = threading.Thread(target=self._serve, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._listener.close()


def http_response(body: bytes, *, length: int | None = None) -> bytes:
    declared = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\nContent-Length: " + str(declared).encode() + b"\r\n\r\n" + body


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class AuthServer:
    """HTTP on 127.0.0.1: ``protected`` paths need ``Authorization: expected``; ``redirects`` send elsewhere.

    ``seen`` records the Authorization header (or None) of every request by path.
    """

    def __init__(self, *, expected: str) -> None:
        self.protected: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.seen: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                given = self.headers.get("Authorization")
                server.seen.append((self.path, given))
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path not in server.protected or given != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.protected[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> AuthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

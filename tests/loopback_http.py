"""A tiny HTTP server on 127.0.0.1 for tests: serve fixed routes and the files of a folder.

A route is ``(status, headers, body)``, or a function of the request's headers returning one (to
answer conditional requests, say). ``requests`` logs every request: its path, headers and the
status it was answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    status: int


class LoopbackServer:
    def __init__(self, root: Path | None = None) -> None:
        self.routes: dict[str, Answer | Callable[[dict[str, str]], Answer]] = {}
        self.root = root
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                headers = dict(self.headers.items())
                status, answer_headers, body = server.lookup(self.path, headers)
                server.requests.append(Seen(path=self.path, headers=headers, status=status))
                self.send_response(status)
                for key, value in answer_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def lookup(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        if path in self.routes:
            route = self.routes[path]
            return route(headers or {}) if callable(route) else route
        if self.root is not None:
            candidate = (self.root / path.lstrip("/")).resolve()
            if candidate.is_relative_to(self.root.resolve()) and candidate.is_file():
                return 200, {}, candidate.read_bytes()
        return 404, {}, b"not found"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

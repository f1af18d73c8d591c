"""``Visitors``: clients that keep a demo-web guest's page busy, for tests that watch a real guest work
(the stacks come from the ``launch_demo_web`` fixture of ``tests/e2e/conftest.py``)."""

from __future__ import annotations

import threading

from tests.polling import page_text, wait_for


class Visitors:
    """Clients fetching a stack's page over and over, each as soon as the last answer came."""

    def __init__(self, url: str, *, clients: int = 2) -> None:
        self._url = url
        self._stop = threading.Event()
        self.pages = 0
        self._threads = [threading.Thread(target=self._visit, daemon=True) for _ in range(clients)]

    def _visit(self) -> None:
        while not self._stop.is_set():
            if page_text(self._url):
                self.pages += 1

    def another_visit(self) -> None:
        before = self.pages
        wait_for(lambda: self.pages > before, timeout=30, what="another visit")

    def __enter__(self) -> Visitors:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

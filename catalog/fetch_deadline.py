"""A wall-clock deadline for a whole transfer, enforced inside the sockets that carry it.

Every connect, send, TLS handshake step and read first sets its socket's timeout to what the
deadline leaves (and at most the idle timeout), so a peer that drips a byte at a time is cut off
on time however the reads are split; ``DeadlinePassed`` comes up through http.client and ssl like
any timeout. The name lookup before them is bounded too (``resolve_within``).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any


class DeadlinePassed(TimeoutError):
    """Raised inside socket calls, so http.client and ssl pass it up like any timeout."""


class Deadline:
    """Wall-clock time left for a whole transfer, and how long any one blocking call may wait."""

    def __init__(self, seconds: float, *, idle_seconds: float) -> None:
        self.seconds = seconds
        self.idle_seconds = idle_seconds
        self._at = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() >= self._at

    def next_timeout(self) -> float:
        """How long the next blocking call may wait; raises once the deadline has passed."""
        left = self._at - time.monotonic()
        if left <= 0:
            raise DeadlinePassed(f"took longer than {self.seconds:g} s")
        return min(self.idle_seconds, left)

    def message(self, url: str) -> str:
        return f"{url}: took longer than {self.seconds:g} s, stopped"


class DeadlineBound:
    """Mixed into socket classes: each blocking call first sets the timeout to what the deadline leaves."""

    deadline: Deadline | None = None

    def _arm(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.next_timeout())  # type: ignore[attr-defined]

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().recv_into(*args, **kwargs)  # type: ignore[misc]

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._arm()
        return super().recv(*args, **kwargs)  # type: ignore[misc]

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().send(*args, **kwargs)  # type: ignore[misc]

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._arm()
        super().sendall(*args, **kwargs)  # type: ignore[misc]


class DeadlineSocket(DeadlineBound, socket.socket):
    pass


class DeadlineSSLSocket(DeadlineBound, ssl.SSLSocket):
    def read(self, *args: Any, **kwargs: Any) -> Any:
        self._arm()
        return super().read(*args, **kwargs)

    def do_handshake(self, *args: Any, **kwargs: Any) -> None:
        # CPython bounds the whole handshake by the timeout set when it starts.
        self._arm()
        super().do_handshake(*args, **kwargs)


def resolve_within(deadline: Deadline, host: str, port: int) -> list[Any]:
    """``socket.getaddrinfo`` for a TCP connection, given up once the deadline (or the idle timeout) passes.

    getaddrinfo cannot be interrupted, so it runs on a thread of its own: a resolver that never
    answers holds that thread until the system resolver gives up, never the caller. A daemon thread
    per lookup and nothing shared, so a forked worker inherits no pool whose threads it lacks, and a
    process may exit while a lookup hangs.
    """
    outcome: dict[str, Any] = {}
    answered = threading.Event()

    def look_up() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except Exception as exc:  # handed to the caller as it is
            outcome["error"] = exc
        finally:
            answered.set()

    threading.Thread(target=look_up, name="fetch-resolve", daemon=True).start()
    if not answered.wait(deadline.next_timeout()):
        raise DeadlinePassed(f"no answer for '{host}' in time")
    if "error" in outcome:
        raise outcome["error"]
    return list(outcome["infos"])

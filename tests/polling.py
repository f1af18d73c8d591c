"""Waiting for something another process does, with a deadline instead of a fixed sleep."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    pass


def wait_for(predicate: Callable[[], T], *, timeout: float, interval: float = 0.25, what: str = "condition") -> T:
    """Call ``predicate`` until it returns something truthy, and return that; raise TimedOut at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimedOut(f"timed out after {timeout} s waiting for {what}")


def page_text(url: str) -> str | None:
    """The body of ``url`` (a loopback address in these tests), or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None

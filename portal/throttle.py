"""Progress callbacks arrive per chunk; the database and the browser need them about once a second."""

from __future__ import annotations

import time
from collections.abc import Callable

ByteProgress = Callable[[int, int], None]


def every(seconds: float, callback: ByteProgress) -> ByteProgress:
    """Wrap ``callback(done, total)`` so it runs at most once per ``seconds``, and always at the end."""
    last = -seconds

    def throttled(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < seconds and done < total:
            return
        last = now
        callback(done, total)

    return throttled

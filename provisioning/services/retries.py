"""Trying a hypervisor call again when its error says a retry can help (``DriverError.retryable``).

Only for calls that are safe to repeat: removing a domain, a volume or a network (each treats a
missing object as done). The pauses grow (``settings.DRIVER_RETRY_DELAYS``) and are short: a worker
waits through them, and what still fails is tried again later by whoever owns the retry (a failed
delete by the lease sweep, with its own, longer back-off).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.conf import settings

from provisioning.drivers import DriverError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def retrying(
    call: Callable[[], T],
    *,
    what: str,
    delays: Sequence[float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``; while it fails with a retryable ``DriverError``, pause for the next of ``delays`` and call again.

    A non-retryable error, or a retryable one after the last pause, is raised as it is.
    """
    pauses = list(settings.DRIVER_RETRY_DELAYS if delays is None else delays)
    attempt = 1
    while True:
        try:
            return call()
        except DriverError as exc:
            if not exc.retryable or attempt > len(pauses):
                raise
            pause = pauses[attempt - 1]
            logger.warning("%s: %s (attempt %d); trying again in %.1f s", what, exc.message, attempt, pause)
        sleep(pause)
        attempt += 1


__all__ = ["retrying"]

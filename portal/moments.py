"""One way to write a moment for people, on pages, in messages and in the admin:
``2026-11-26 14:05 CET``, and one way to write a duration: ``2 days 3 hours``.

Moments are in the active time zone: the reader's on a web request (``portal.time_zone``), else the
server's. Both are cut, never rounded: a moment to its minute, as a clock shows it; a duration to
its two largest units, so that "7 days" is never shown for a lease that is a second short of it.
Django's own renderings (the admin, ``|date``) follow the same format (``portal/formats``).
Machine-readable places (the API, ``datetime`` attributes, feeds, webhooks) keep ISO 8601.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from django.utils import timezone

MOMENT_FORMAT = "%Y-%m-%d %H:%M %Z"
UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def moment_text(value: datetime) -> str:
    return timezone.localtime(value).strftime(MOMENT_FORMAT)


def duration_text(length: int | float | timedelta) -> str:
    """``2 days 3 hours``, ``5 hours``, ``45 minutes 10 seconds``: the largest unit and the next one.

    ``length`` is seconds or a timedelta; a negative one reads as none, a fraction of a second as
    "less than a second".
    """
    exact = length.total_seconds() if isinstance(length, timedelta) else length
    if 0 < exact < 1:
        return "less than a second"
    seconds = max(int(exact), 0)
    for (name, size), (next_name, next_size) in pairwise(UNITS):
        if seconds >= size:
            count, rest = divmod(seconds, size)
            parts = [_counted(count, name)]
            if rest >= next_size:
                parts.append(_counted(rest // next_size, next_name))
            return " ".join(parts)
    return _counted(seconds, "second")


def duration_until(value: datetime, *, now: datetime | None = None) -> str:
    """How long until ``value`` (none once it has passed)."""
    return duration_text(value - (now or timezone.now()))


def _counted(count: int, name: str) -> str:
    return f"{count} {name}{'' if count == 1 else 's'}"

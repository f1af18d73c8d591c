"""One way to write a moment for people, on pages and in messages: ``2026-11-26 14:05 CET``, and one
way to write a duration: ``2 days 3 hours``.

In the active time zone: the reader's on a web request (``portal.time_zone``), else the server's.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

MOMENT_FORMAT = "%Y-%m-%d %H:%M %Z"


def moment_text(value: datetime) -> str:
    return timezone.localtime(value).strftime(MOMENT_FORMAT)


def duration_text(seconds: int) -> str:
    """``2 days 3 hours``, ``5 hours 20 minutes``, ``45 minutes``: two units at most."""
    units = [("day", 86400), ("hour", 3600), ("minute", 60)]
    parts = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts[:2]) or "less than a minute"

"""One way to write a moment for people, on pages and in messages: ``2026-11-26 14:05 CET``.

In the active time zone: the reader's on a web request (``portal.time_zone``), else the server's.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

MOMENT_FORMAT = "%Y-%m-%d %H:%M %Z"


def moment_text(value: datetime) -> str:
    return timezone.localtime(value).strftime(MOMENT_FORMAT)

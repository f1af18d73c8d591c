"""One way to write a moment on every page: ``{{ value|when }}``.

The text is in the user's time zone (activated by ``portal.time_zone.UserTimeZoneMiddleware``) and
reads the same everywhere, e.g. ``2026-11-26 14:05 CET``; the ``<time>`` element carries the exact
instant for scripts (countdowns) and assistive technology.
"""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.html import format_html

from portal.moments import moment_text

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), moment_text(value))

"""One way to write a moment on every page: ``{{ value|when }}``, and a duration: ``{{ value|duration }}``.

The text is in the user's time zone (activated by ``portal.time_zone.UserTimeZoneMiddleware``) and
reads the same everywhere, e.g. ``2026-11-26 14:05 CET``; the ``<time>`` element carries the exact
instant for scripts (countdowns) and assistive technology.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.html import format_html

from portal import actors
from portal.moments import duration_text, duration_until, moment_text

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), moment_text(value))


@register.filter
def duration(value: int | float | timedelta | None) -> str:
    """A length of time (seconds or a timedelta) the one way: ``{{ project.max_lease_seconds|duration }}``."""
    if value is None:
        return "—"
    return duration_text(value)


@register.filter
def time_left(value: datetime | None) -> str:
    """How long until a moment, the one way: ``{{ stack.expires_at|time_left }}`` (``2 hours 5 minutes``)."""
    if value is None:
        return "—"
    return duration_until(value)


@register.filter
def actor_name(user: AbstractBaseUser | None) -> str:
    """Who did something: the person's user name, or the portal when it acted on its own."""
    return actors.actor_name(user)

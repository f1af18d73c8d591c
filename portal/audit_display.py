"""The audit trail as operators read it in the admin: who acted (a name, or the portal), and the
details with their moments and durations written the one way (``portal.moments``).

The stored details keep ISO 8601 and seconds (data); only their display changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.utils.dateparse import parse_datetime

from portal import actors
from portal.models import AuditEvent
from portal.moments import duration_text, moment_text


def readable_value(key: str, value: Any) -> str:
    """One detail's value for people: moments and durations the one way, lists joined, the rest as is."""
    if isinstance(value, str):
        moment = _moment(value)
        return moment_text(moment) if moment is not None else value
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, int) and key.endswith("_seconds"):
        return duration_text(value)
    if isinstance(value, list):
        return ", ".join(readable_value(key, item) for item in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {readable_value(k, v)}" for k, v in value.items()) or "—"
    return str(value)


def detail_text(detail: dict[str, Any]) -> str:
    """``expires_at: 2026-12-05 04:39 IST; lease_seconds: 2 hours; shortened: no``."""
    return "; ".join(f"{key}: {readable_value(key, value)}" for key, value in detail.items()) or "—"


def _moment(text: str) -> datetime | None:
    """An ISO 8601 moment with its offset, as the services store them; anything else is not one."""
    if len(text) < 16 or text[10:11] != "T":
        return None
    try:
        value = parse_datetime(text)
    except ValueError:
        return None
    return value if value is not None and value.tzinfo is not None else None


class AuditEventDisplay:
    """Display columns for the audit trail's admin: ``actor_name`` and ``detail_text``."""

    @admin.display(description="actor", ordering="actor__username")
    def actor_name(self, event: AuditEvent) -> str:
        return actors.actor_name(event.actor)

    @admin.display(description="detail")
    def detail_text(self, event: AuditEvent) -> str:
        return detail_text(event.detail)

"""What a project's lease policy allows a stack: its latest end, and how far it may still be extended."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from provisioning.models import Stack


def latest_end(stack: Stack) -> datetime:
    """The latest a stack may live: its project's longest life (``max_life``), counted from its creation."""
    return stack.created_at + timedelta(seconds=stack.project.max_lease_seconds)


def extendable_until(stack: Stack, *, now: datetime | None = None) -> datetime:
    """How far one extension asked for now could take the stack's lease: the policy's longest single
    extension counted from now, never past its longest life, and never earlier than today's end."""
    now = now or timezone.now()
    furthest = min(now + timedelta(seconds=stack.project.max_extension_seconds), latest_end(stack))
    return max(furthest, stack.expires_at)

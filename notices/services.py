"""The notices' services: what other apps call.

- ``notify_stack_event``: the lifecycle's events (lease ended, shelved, deleted, idle), safe inside
  the caller's transaction (``notices.announce``);
- ``lease_warnings_send``: the warnings before a lease ends (``notices.lease_warnings``), every minute;
- ``webhook_deliveries_send``: the projects' webhooks (``notices.webhooks``), every minute;
- ``notification_mark_read`` and ``notifications_mark_all_read``: the reader's own list.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from notices import live
from notices.announce import announce
from notices.lease_warnings import lease_warnings_send
from notices.models import Event, Notification
from notices.webhooks import webhook_deliveries_send
from portal import errors
from portal.scoping import User
from provisioning.models import Stack

# Told by the lifecycle; warnings come from the lease sweep above.
STACK_EVENTS = (Event.LEASE_ENDED, Event.STACK_IDLE, Event.STACK_SHELVED, Event.STACK_DELETED)


def notify_stack_event(*, stack: Stack, event: str | Event, moment: datetime | None = None) -> list[Notification]:
    """Tell everyone who may act on ``stack`` that ``event`` happened. ``moment`` is the lease end the
    event speaks of (the stack's current ``expires_at`` when left out)."""
    try:
        kind = Event(event)
    except ValueError:
        raise errors.Invalid(f"no such stack event '{event}'") from None
    if kind not in STACK_EVENTS:
        raise errors.Invalid(f"'{kind.value}' is not told through notify_stack_event")
    return announce(stack=stack, event=kind, moment=moment or stack.expires_at)


def notification_mark_read(*, user: User, notification: Notification) -> Notification:
    """Mark one of the user's own notifications read (``NotFound`` for anyone else's)."""
    if not Notification.objects.mine(user).filter(pk=notification.pk).exists():
        raise errors.NotFound("no such notification")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
        live.announce_notices_changed([notification.user_id])
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    """Mark all the user's unread notifications read; returns how many."""
    count = Notification.objects.mine(user).unread().update(read_at=timezone.now())
    if count and user.pk is not None:
        live.announce_notices_changed([user.pk])
    return count


__all__ = [
    "lease_warnings_send",
    "notification_mark_read",
    "notifications_mark_all_read",
    "notify_stack_event",
    "webhook_deliveries_send",
]

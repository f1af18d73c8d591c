"""Reads of the notices, always the caller's own."""

from __future__ import annotations

from notices.models import Notification, NotificationQuerySet
from portal.scoping import User


def notifications_of(user: User, *, unread_only: bool = False) -> NotificationQuerySet:
    notifications = Notification.objects.mine(user).select_related("project")
    return notifications.unread() if unread_only else notifications


def unread_count(user: User) -> int:
    return Notification.objects.mine(user).unread().count()

"""What the portal told whom about their stacks, and what it still has to deliver.

Moments are data here (``moment``, ``lease_end``, ``expires_at``): pages, mail and webhook bodies
render them for their reader; no stored text contains one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from portal.models import Project
from portal.moments import duration_text, moment_text
from portal.querysets import ProjectScopedQuerySet
from provisioning.models import Stack

if TYPE_CHECKING:
    from portal.scoping import User


class Event(models.TextChoices):
    LEASE_WARNING = "lease.warning", "Lease ends soon"
    LEASE_ENDED = "lease.ended", "Lease ended"
    STACK_IDLE = "stack.idle", "Stack is idle"
    STACK_SHELVED = "stack.shelved", "Stack shelved"
    STACK_DELETED = "stack.deleted", "Stack deleted"


# Events after which the stack may still be kept longer: their mail carries a one-click extend link.
# (Not an idle warning: a longer lease does not keep an idle stack from being shelved; using it does.)
EXTENDABLE_EVENTS = (Event.LEASE_WARNING, Event.LEASE_ENDED, Event.STACK_SHELVED)


class NotificationQuerySet(ProjectScopedQuerySet["Notification"]):
    project_path = "project"

    def mine(self, user: User) -> NotificationQuerySet:
        """The user's own notifications, about projects they may still see."""
        if not user.is_authenticated:
            return self.none()
        return self.visible_to(user).filter(user=user)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """One event told to one person: listed in the portal, and mailed when they have an address."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="notifications")
    # The stack's id and name are copied: the notification still says what it was about once the
    # stack row is gone.
    stack = models.ForeignKey(Stack, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    stack_ref = models.BigIntegerField(help_text="The stack's id", verbose_name="stack ID")
    stack_name = models.CharField(max_length=63)
    event = models.CharField(max_length=20, choices=Event.choices)
    moment = models.DateTimeField(null=True, blank=True, help_text="The lease end the notification speaks of")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="created")
    read_at = models.DateTimeField(null=True, blank=True, verbose_name="read")
    mailed_at = models.DateTimeField(null=True, blank=True, verbose_name="mailed")

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notice_user_unread")]

    def __str__(self) -> str:
        return f"{self.get_event_display()}: {self.stack_name} for {self.user}"


class LeaseWarning(models.Model):
    """A marker: the warning ``offset_seconds`` before the lease end ``expires_at`` was dealt with.

    One row per (stack, lease end, offset), so each warning goes out once per lease end; a renewed
    lease has a new end, and is warned again. Offsets skipped because a later one was already due
    get a row too, so they are never sent late.
    """

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="lease_warnings")
    expires_at = models.DateTimeField(verbose_name="lease ends")
    offset_seconds = models.PositiveIntegerField(verbose_name="before the lease ends (seconds)")
    sent = models.BooleanField(default=True, help_text="False: passed over for a later warning due at once")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stack", "expires_at", "offset_seconds"], name="one_warning_per_lease_end_and_offset"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stack_id} warned {duration_text(self.offset_seconds)} before {moment_text(self.expires_at)}"


class ExtendLink(models.Model):
    """A single-use link that extends one stack's lease as one person, without signing in.

    Only the SHA-256 of the secret is kept; the secret itself is only ever in the mail. Every link
    of the same person, stack and lease end counts as one: using any of them uses them all.
    """

    digest = models.CharField(max_length=64, unique=True, verbose_name="SHA-256 digest of the link's secret")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="extend_links")
    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="extend_links")
    lease_end = models.DateTimeField(help_text="The lease end the link was made for")
    notification = models.ForeignKey(Notification, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    expires_at = models.DateTimeField(verbose_name="expires")
    used_at = models.DateTimeField(null=True, blank=True, verbose_name="used")

    class Meta:
        indexes = [models.Index(fields=["user", "stack", "lease_end"], name="extend_link_owner")]

    def __str__(self) -> str:
        return f"extend {self.stack_id} as {self.user} ({'used' if self.used_at else 'unused'})"


class WebhookDelivery(models.Model):
    """One event POSTed to a project's webhook: the exact body, and how the attempts went."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=20, choices=Event.choices)
    url = models.CharField(max_length=500, verbose_name="URL")
    body = models.BinaryField(help_text="The exact JSON bytes sent (and signed)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True, verbose_name="next attempt")
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name="last HTTP status")
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name="delivered")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} to {self.project} ({self.status})"


class WebhookAttempt(models.Model):
    """One try of a delivery: when, what the server answered, or why nothing was sent."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveSmallIntegerField(verbose_name="attempt")
    started_at = models.DateTimeField(verbose_name="started")
    duration_ms = models.PositiveIntegerField(default=0, verbose_name="duration (ms)")
    response_code = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name="HTTP status")
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_row_per_attempt")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"

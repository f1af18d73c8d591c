"""Mail about a notification: plain text, with the moment written for the reader and, where the
stack can still be kept, a one-click extend link made for that reader alone.

Sent by a task after the notification's transaction commits (``notices.tasks.mail_notifications``),
so the link's secret exists only in that task's memory and in the mail, never in a queue or table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.mail import EmailMessage, get_connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from notices.extend_links import extend_link_issue
from notices.links import absolute, extend_link_url, stack_page_url
from notices.models import EXTENDABLE_EVENTS, Event, ExtendLink, Notification
from portal.models import RunEnd
from portal.moments import duration_text, moment_text
from provisioning.models import DELETABLE_STATUSES, Stack, Status
from provisioning.services.lifecycle import latest_end

logger = logging.getLogger(__name__)

SUBJECTS = {
    Event.LEASE_WARNING: "Stack {name}: its lease ends {moment}",
    Event.LEASE_ENDED: "Stack {name}: its lease ended",
    Event.STACK_IDLE: "Stack {name} is idle",
    Event.STACK_SHELVED: "Stack {name} was shelved",
    Event.STACK_DELETED: "Stack {name} was deleted",
}
WHAT = {
    Event.LEASE_WARNING: 'The lease of stack "{name}" in project "{project}" ends {moment}.',
    Event.LEASE_ENDED: 'The lease of stack "{name}" in project "{project}" ended {moment}.',
    Event.STACK_IDLE: 'Stack "{name}" in project "{project}" has been idle. It will be shelved {moment} '
    "unless it is used before then.",
    Event.STACK_SHELVED: 'Stack "{name}" in project "{project}" was shelved: its VMs are stopped and its disks '
    "are kept until {moment}.",
    Event.STACK_DELETED: 'Stack "{name}" in project "{project}" was deleted, disks and all.',
}


def at_lease_end(stack: Stack) -> str:
    """What happens when the stack's lease ends: a shelved stack's storage lease ends in its deletion;
    a running one's in what the project's policy says."""
    project = stack.project
    if stack.status == Status.SHELVED or project.at_run_end == RunEnd.DELETE:
        return "When it ends, the stack is deleted, disks and all."
    keep = duration_text(project.storage_lease_seconds)
    return f"When it ends, the stack is shelved: its VMs stop and its disks are kept for {keep}, then deleted."


def notifications_mail(notification_ids: Iterable[int]) -> int:
    """Mail each notification not mailed yet to its recipient, if they have an address; returns how many."""
    pending = (
        Notification.objects.filter(pk__in=list(notification_ids), mailed_at__isnull=True)
        .exclude(user__email="")
        .select_related("user", "project", "stack__project")
        .order_by("pk")
    )
    messages: list[tuple[Notification, EmailMessage]] = [(n, _message(n)) for n in pending]
    if not messages:
        return 0
    sent = 0
    with get_connection(fail_silently=False) as connection:
        for notification, message in messages:
            try:
                connection.send_messages([message])
            except Exception as exc:
                # One bad address or a mail server hiccup must not keep the others' warnings back.
                logger.warning("could not mail notification %s: %s", notification.pk, exc.__class__.__name__)
                ExtendLink.objects.filter(notification=notification, used_at__isnull=True).delete()
                continue
            Notification.objects.filter(pk=notification.pk).update(mailed_at=timezone.now())
            sent += 1
    return sent


def _message(notification: Notification) -> EmailMessage:
    project = notification.project
    moment = moment_text(notification.moment) if notification.moment else "now"
    words = {"name": notification.stack_name, "project": project.name, "moment": moment}
    stack = notification.stack
    warning = notification.event == Event.LEASE_WARNING
    context = {
        "user": notification.user,
        "project": project,
        "what": WHAT[Event(notification.event)].format(**words),
        "at_end": at_lease_end(stack) if warning and stack is not None else "",
        "stack_url": stack_page_url(notification.stack_ref),
        "notifications_url": absolute(reverse("notification-list")),
        "extend_url": "",
    }
    if (
        notification.event in EXTENDABLE_EVENTS
        and stack is not None
        and stack.status in DELETABLE_STATUSES
        and notification.moment is not None
    ):
        link, secret = extend_link_issue(
            notification=notification, user=notification.user, stack=stack, lease_end=notification.moment
        )
        context.update(
            extend_url=extend_link_url(secret),
            max_extension=duration_text(project.max_extension_seconds),
            latest_end=moment_text(latest_end(stack)),
            link_ends=moment_text(link.expires_at),
        )
    subject = "[Stack portal] " + SUBJECTS[Event(notification.event)].format(**words)
    body = render_to_string("notices/mail/notification.txt", context)
    return EmailMessage(subject=subject, body=body, to=[notification.user.email])

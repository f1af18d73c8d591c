"""Telling everyone who may act on a stack about one event: a notification each, then mail, the
project's webhook, and a nudge to their open pages.

Rows (notifications, the webhook delivery, the audit entry) are written in the caller's
transaction and vanish with it; what leaves the database (mail, the pages' nudge) waits for the
commit. So a lifecycle service may announce from inside its own transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from notices import live
from notices.models import Event, Notification
from notices.recipients import people_who_may_act
from notices.webhooks import webhook_queue
from portal import audit
from portal.task_queues import Queue, enqueue
from provisioning.models import Stack


def announce(*, stack: Stack, event: Event, moment: datetime | None, **audit_detail: Any) -> list[Notification]:
    project = stack.project
    with transaction.atomic():
        people = list(people_who_may_act(project))
        notifications = Notification.objects.bulk_create(
            Notification(
                user=person,
                project=project,
                stack=stack,
                stack_ref=stack.pk,
                stack_name=stack.name,
                event=event,
                moment=moment,
            )
            for person in people
        )
        delivery = webhook_queue(project=project, stack=stack, event=event, moment=moment)
        audit.record(
            actor=None,
            action=f"notice.{event.value}",
            target=stack,
            project=project,
            moment=moment.isoformat() if moment else None,
            recipients=[person.get_username() for person in people],
            webhook=delivery is not None,
            **audit_detail,
        )
        live.announce_notices_changed(person.pk for person in people)
        ids = [notification.pk for notification in notifications]
        if ids:
            transaction.on_commit(lambda: _queue_mail(ids))
    return notifications


def _queue_mail(notification_ids: list[int]) -> None:
    enqueue(
        "notices.tasks.mail_notifications",
        notification_ids,
        queue=Queue.CONTROL,
        task_name=f"mail-notices-{notification_ids[0]}",
    )

"""A project's webhook: one signed JSON POST per event, retried with growing pauses, every try kept.

The body is built once and stored as the exact bytes sent; each try signs those bytes with the
project's current secret (``X-Portal-Signature: sha256=<hex HMAC-SHA256>``), so a receiver checks
the signature over the raw body it got. Before each try the URL must still be the project's webhook
and pass the address guard again (``notices.webhook_address``). A try is claimed by moving its
``next_attempt_at`` forward in one conditional update, so two workers never send the same try, and
no database transaction is open while the POST waits on the receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notices.extend_links import extend_link_issue
from notices.links import extend_link_url, stack_page_url
from notices.models import EXTENDABLE_EVENTS, Event, WebhookAttempt, WebhookDelivery
from notices.recipients import people_who_may_act
from notices.webhook_post import PostResult, post_json
from portal import audit
from portal.models import Project, Role
from provisioning.models import Stack

# The pause after the 1st, 2nd... failed try; a delivery gets one try more than there are pauses.
RETRY_PAUSES = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(RETRY_PAUSES) + 1
# A claimed try that never reported (its worker died) is tried again after this.
CLAIM_FOR = timedelta(minutes=5)
# Tries per run of the sweep: a flood of events waits for the next minute rather than hold a worker.
TRIES_PER_RUN = 50
SIGNATURE_HEADER = "X-Portal-Signature"


def webhook_body(*, event: Event, stack: Stack, moment: datetime | None, extend_url: str | None) -> bytes:
    """The exact bytes POSTed."""
    document = {
        "event": event.value,
        "stack": {"id": stack.pk, "name": stack.name},
        "expires_at": moment.isoformat() if moment else None,
        "extend_url": extend_url,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("ascii")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_queue(*, project: Project, stack: Stack, event: Event, moment: datetime | None) -> WebhookDelivery | None:
    """A pending delivery of ``event`` to the project's webhook, or None when it has none."""
    if not project.webhook_url:
        return None
    return WebhookDelivery.objects.create(
        project=project,
        event=event,
        url=project.webhook_url,
        body=webhook_body(
            event=event, stack=stack, moment=moment, extend_url=_webhook_extend_url(stack, event, moment)
        ),
        next_attempt_at=timezone.now(),
    )


def _webhook_extend_url(stack: Stack, event: Event, moment: datetime | None) -> str | None:
    """A one-click extension for whoever reads the project's channel, or the stack's page.

    The link acts as the stack's creator, or else the first owner, while they may act; like a mailed
    link it works once, only on this stack, and can do no more than extend within the policy. Its
    secret is in the stored body (a retry must send the same bytes): the delivery rows are operators'.
    """
    if event not in EXTENDABLE_EVENTS or moment is None:
        return stack_page_url(stack.pk) if event != Event.STACK_DELETED else None
    actors = people_who_may_act(stack.project)
    creator = actors.filter(pk=stack.created_by_id).first() if stack.created_by_id else None
    actor = creator or actors.filter(memberships__role=Role.OWNER).first()
    if actor is None:
        return stack_page_url(stack.pk)
    _link, secret = extend_link_issue(notification=None, user=actor, stack=stack, lease_end=moment)
    return extend_link_url(secret)


def webhook_deliveries_send(*, now: datetime | None = None) -> int:
    """Try every delivery that is due at ``now``; returns how many tries were made."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
    tries = 0
    for delivery_id, planned in list(
        due.order_by("next_attempt_at").values_list("pk", "next_attempt_at")[:TRIES_PER_RUN]
    ):
        claimed = WebhookDelivery.objects.filter(
            pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at=planned
        ).update(next_attempt_at=now + CLAIM_FOR, attempts=F("attempts") + 1)
        if claimed:
            _try(WebhookDelivery.objects.select_related("project").get(pk=delivery_id), now=now)
            tries += 1
    return tries


def _try(delivery: WebhookDelivery, *, now: datetime) -> None:
    project = delivery.project
    started = timezone.now()
    if project.webhook_url != delivery.url or not project.webhook_secret:
        result = PostResult(
            response_code=None,
            error="the project's webhook was changed or removed after this event",
            refused=True,
            duration_ms=0,
        )
    else:
        body = bytes(delivery.body)
        headers = {
            SIGNATURE_HEADER: signature(project.webhook_secret, body),
            "X-Portal-Event": delivery.event,
            "X-Portal-Delivery": str(delivery.pk),
        }
        result = post_json(delivery.url, body=body, headers=headers)
    _record(delivery, result, started=started, now=now)


def _record(delivery: WebhookDelivery, result: PostResult, *, started: datetime, now: datetime) -> None:
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started,
            duration_ms=result.duration_ms,
            response_code=result.response_code,
            error=result.error,
        )
        delivery.last_response_code = result.response_code
        delivery.last_error = result.error
        if result.delivered:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif result.refused or delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + RETRY_PAUSES[delivery.attempts - 1]
        delivery.save(update_fields=["status", "last_response_code", "last_error", "delivered_at", "next_attempt_at"])
        if delivery.status != WebhookDelivery.Status.PENDING:  # delivered, or given up: the audit says which
            audit.record(
                actor=None,
                action=f"notice.webhook_{delivery.status}",
                target=delivery,
                project=delivery.project,
                event=delivery.event,
                attempts=delivery.attempts,
                response_code=result.response_code,
                error=result.error or None,
            )

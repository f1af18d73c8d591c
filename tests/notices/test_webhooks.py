"""A project's webhook, received by a real server on 127.0.0.1: refused addresses first (at send
time too), then a valid signature over the exact body, retries with pauses, every try recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from notices.models import WebhookAttempt, WebhookDelivery
from notices.services import lease_warnings_send, notify_stack_event, webhook_deliveries_send
from notices.webhooks import MAX_ATTEMPTS, RETRY_PAUSES
from portal.models import AuditEvent, Project
from tests.notices.conftest import SECRET

MINUTE = timedelta(minutes=1)


def deliver(now=None) -> int:
    return webhook_deliveries_send(now=now)


def test_a_webhook_to_a_private_address_saved_behind_the_portals_back_is_refused_at_send(step, project, make_stack):
    for address in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook"):
        Project.objects.filter(pk=project.pk).update(webhook_url=address, webhook_secret=SECRET)
        project.refresh_from_db()
        stack = make_stack(f"s{len(address)}")
        step(lambda stack=stack: notify_stack_event(stack=stack, event="lease.ended"))
        assert deliver() == 1
        delivery = WebhookDelivery.objects.get(url=address)
        assert delivery.status == WebhookDelivery.Status.FAILED  # refused: trying again would not help
        assert "non-public address" in delivery.last_error
        assert delivery.last_response_code is None
        assert delivery.tries.get().response_code is None


def test_a_host_taken_off_the_allowlist_after_saving_is_refused_at_send(step, settings, webhook, make_stack):
    stack = make_stack()
    step(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    settings.FETCH_ALLOWED_PRIVATE_HOSTS = []
    deliver()
    assert webhook.received == []
    assert "non-public address" in WebhookDelivery.objects.get().last_error


def test_the_receiver_gets_the_event_with_a_valid_signature_over_the_exact_body(
    step, webhook, make_stack, member, client
):
    stack = make_stack("billing-web", ends_in=5 * MINUTE, created_by=member)
    step(lambda: lease_warnings_send())
    assert deliver() == 1
    (got,) = webhook.received
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-portal-signature"], expected)
    assert got.headers["content-type"] == "application/json"
    assert got.path == "/hooks/portal?team=ops"
    document = json.loads(got.body)
    extend_url = document.pop("extend_url")
    assert document == {
        "event": "lease.warning",
        "stack": {"id": stack.pk, "name": "billing-web"},
        "expires_at": stack.expires_at.isoformat(),
    }
    delivery = WebhookDelivery.objects.get()
    assert bytes(delivery.body) == got.body  # what was stored is what was sent
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("delivered", 1, 200)
    delivered = AuditEvent.objects.get(action="notice.webhook_delivered")
    assert (delivered.detail["attempts"], delivered.detail["response_code"]) == (1, 200)
    # The link extends once, as the stack's creator, without signing in; a second use is gone.
    assert extend_url.startswith(f"{django_settings.PORTAL_BASE_URL}/extend/")
    path = extend_url.removeprefix(django_settings.PORTAL_BASE_URL)
    assert client.get(path).status_code == 200
    assert step(lambda: client.post(path)).status_code in (200, 302)
    stack.refresh_from_db()
    assert stack.expires_at > timezone.now() + 10 * MINUTE
    assert client.post(path).status_code == 410
    assert delivery.delivered_at is not None
    assert deliver() == 0  # delivered once


def test_a_signature_with_another_secret_does_not_match(step, webhook, make_stack):
    """The receiver's check can fail: a body signed with another key is told apart."""
    stack = make_stack()
    step(lambda: notify_stack_event(stack=stack, event="stack.deleted"))
    deliver()
    (got,) = webhook.received
    forged = "sha256=" + hmac.new(b"another-secret-entirely", got.body, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(got.headers["x-portal-signature"], forged)
    assert json.loads(got.body)["extend_url"] is None  # a deleted stack cannot be extended


def test_a_failed_try_is_retried_later_and_every_try_is_recorded(step, webhook, make_stack):
    webhook.answer(500)
    stack = make_stack()
    step(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    now = timezone.now()
    assert deliver(now) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("pending", 1, 500)
    assert delivery.last_error == "the server answered HTTP 500"
    assert delivery.next_attempt_at == now + RETRY_PAUSES[0]
    assert deliver(now + 30 * timedelta(seconds=1)) == 0  # not due yet
    assert deliver(now + RETRY_PAUSES[0] + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("delivered", 2, 200)
    tries = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "response_code"))
    assert tries == [(1, 500), (2, 200)]
    assert len(webhook.received) == 2
    assert webhook.received[0].body == webhook.received[1].body


def test_a_delivery_that_keeps_failing_gives_up_after_its_last_try(step, webhook, make_stack):
    webhook.answer(*[503] * MAX_ATTEMPTS)
    stack = make_stack()
    step(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    moment = timezone.now()
    for _ in range(MAX_ATTEMPTS):
        assert deliver(moment) == 1
        moment = WebhookDelivery.objects.get().next_attempt_at or moment
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", MAX_ATTEMPTS, None)
    assert deliver(moment + timedelta(days=1)) == 0
    assert AuditEvent.objects.filter(action="notice.webhook_failed").count() == 1


def test_redirects_are_not_followed(step, webhook, make_stack):
    webhook.answer((302, {"Location": "http://127.0.0.1:9/elsewhere"}))
    stack = make_stack()
    step(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    deliver()
    assert len(webhook.received) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_response_code == 302
    assert "redirect" in delivery.last_error


def closed_port() -> int:
    """A loopback port nothing listens on (bound for a moment, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_receiver_that_is_not_listening_is_recorded_in_portal_words(step, project, make_stack):
    address = f"http://127.0.0.1:{closed_port()}/hook"
    Project.objects.filter(pk=project.pk).update(webhook_url=address, webhook_secret=SECRET)
    project.refresh_from_db()
    stack = make_stack()
    step(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    deliver()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_error == "the connection was refused"


def test_a_webhook_removed_after_the_event_gets_nothing(step, api, owner, project, webhook, make_stack):
    stack = make_stack()
    step(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    api(owner).patch(f"/api/v1/projects/{project.pk}/policy/", {"webhook_url": None}, format="json")
    deliver()
    assert webhook.received == []
    assert WebhookDelivery.objects.get().status == "failed"


def test_a_project_without_a_webhook_queues_nothing(step, project, make_stack):
    stack = make_stack()
    step(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("event", ["lease.warning", "stack.exploded"])
def test_only_the_lifecycles_events_are_told_through_notify_stack_event(project, make_stack, event):
    from portal import errors

    with pytest.raises(errors.Invalid):
        notify_stack_event(stack=make_stack(), event=event)

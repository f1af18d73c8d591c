"""The extend link of a warning mail, from the attacker's side first: used twice, ended, past the
longest life, for another stack, from someone no longer in the project, without CSRF token."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from notices.extend_links import digest_of
from notices.models import ExtendLink
from notices.services import lease_warnings_send
from portal.models import AuditEvent, Membership
from provisioning.models import Stack

MINUTE = timedelta(minutes=1)


def secret_mailed_to(address: str) -> str:
    message = next(message for message in mail.outbox if message.to == [address])
    (secret,) = re.findall(r"/extend/([A-Za-z0-9_-]{43})/", message.body)
    return secret


@pytest.fixture
def warned(step, people, project, make_stack):
    """A stack whose lease ends in 5 minutes, warned: the member's link and the stack."""
    project.warn_before = [600]
    project.max_extension_seconds = 3600
    project.save(update_fields=["warn_before", "max_extension_seconds"])
    stack = make_stack("ours", ends_in=5 * MINUTE)
    step(lambda: lease_warnings_send())
    return secret_mailed_to("mateo@example.org"), stack


def link_url(secret: str) -> str:
    return f"/extend/{secret}/"


def test_a_link_used_twice_answers_gone_the_second_time(client, warned):
    secret, stack = warned
    assert client.post(link_url(secret)).status_code == 200
    extended = Stack.objects.get(pk=stack.pk).expires_at
    again = client.post(link_url(secret))
    assert again.status_code == 410
    assert "used already" in again.content.decode()
    assert client.get(link_url(secret)).status_code == 410
    assert Stack.objects.get(pk=stack.pk).expires_at == extended  # the second use did nothing


def test_links_of_the_same_reader_and_lease_end_are_spent_together(step, client, warned, project):
    secret, stack = warned
    project.warn_before = [600, 120]
    project.save(update_fields=["warn_before"])
    mail.outbox.clear()
    step(lambda: lease_warnings_send(now=stack.expires_at - 2 * MINUTE))  # a second warning, a second link
    second = secret_mailed_to("mateo@example.org")
    assert second != secret
    assert client.post(link_url(second)).status_code == 200
    assert client.post(link_url(secret)).status_code == 410


def test_an_ended_link_answers_gone(client, warned):
    secret, stack = warned
    ExtendLink.objects.filter(digest=digest_of(secret)).update(expires_at=timezone.now() - MINUTE)
    response = client.post(link_url(secret))
    assert response.status_code == 410
    assert Stack.objects.get(pk=stack.pk).expires_at == stack.expires_at


def test_a_link_ends_within_a_week_however_long_the_storage_lease(warned):
    secret, stack = warned
    link = ExtendLink.objects.get(digest=digest_of(secret))
    assert link.expires_at <= link.created_at + timedelta(days=7)
    assert link.lease_end == stack.expires_at


def test_an_unknown_or_malformed_secret_is_not_found(client, warned):
    secret, _stack = warned
    forged = ("A" if secret[0] != "A" else "B") + secret[1:]
    assert client.get(link_url(forged)).status_code == 404
    assert client.post(link_url(forged)).status_code == 404
    assert client.get("/extend/short/").status_code == 404


def test_a_link_cannot_extend_past_the_longest_life(client, people, project, make_stack, step):
    project.warn_before = [600]
    project.max_lease_seconds = 2 * 3600
    project.save(update_fields=["warn_before", "max_lease_seconds"])
    # Created 2 hours ago less 5 minutes, ending at its longest life: no extension can be given.
    stack = make_stack("old", ends_in=5 * MINUTE, age=timedelta(hours=2) - 5 * MINUTE)
    Stack.objects.filter(pk=stack.pk).update(expires_at=stack.created_at + timedelta(hours=2))
    step(lambda: lease_warnings_send())
    secret = secret_mailed_to("mateo@example.org")
    page = client.get(link_url(secret))
    assert page.status_code == 200
    assert "cannot be extended" in page.content.decode()
    assert "<button" not in page.content.decode().split("<main")[1]  # no button to press
    refused = client.post(link_url(secret))
    assert refused.status_code == 400
    assert "cannot be extended" in refused.content.decode()
    stack.refresh_from_db()
    assert stack.expires_at == stack.created_at + timedelta(hours=2)
    assert ExtendLink.objects.get(digest=digest_of(secret)).used_at is None  # nothing happened: not spent


def test_a_link_for_one_stack_never_touches_another(client, warned, make_stack):
    secret, stack = warned
    other = make_stack("other", ends_in=5 * MINUTE)
    before = other.expires_at
    response = client.post(link_url(secret), {"stack": other.pk, "stack_id": other.pk})
    assert response.status_code == 200
    other.refresh_from_db()
    assert other.expires_at == before
    assert Stack.objects.get(pk=stack.pk).expires_at > stack.expires_at


def test_the_link_stops_working_for_someone_who_left_the_project(client, warned, member, project):
    secret, stack = warned
    Membership.objects.filter(user=member, project=project).delete()
    response = client.post(link_url(secret))
    assert response.status_code == 403
    assert Stack.objects.get(pk=stack.pk).expires_at == stack.expires_at


def test_opening_the_link_asks_and_changes_nothing(client, warned):
    secret, stack = warned
    page = client.get(link_url(secret))
    assert page.status_code == 200
    text = page.content.decode()
    assert "ours" in text
    assert "alpha" in text
    assert "Extend the lease" in text
    assert page["Referrer-Policy"] == "no-referrer"
    assert "no-cache" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]
    assert Stack.objects.get(pk=stack.pk).expires_at == stack.expires_at
    assert ExtendLink.objects.get(digest=digest_of(secret)).used_at is None


def test_the_link_works_without_signing_in_and_extends_as_its_reader(warned, member):
    secret, stack = warned
    browser = Client(enforce_csrf_checks=True)
    refused = browser.post(link_url(secret))  # no CSRF token: Django's protection stands
    assert refused.status_code == 403
    page = browser.get(link_url(secret))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    done = browser.post(link_url(secret), {"csrfmiddlewaretoken": token})
    assert done.status_code == 200
    assert "now ends" in done.content.decode()
    stack.refresh_from_db()
    # The policy's longest extension (an hour), counted from now: well past the old end.
    assert stack.expires_at > stack.created_at + timedelta(minutes=50)
    audit = AuditEvent.objects.get(action="stack.extend_lease")
    assert audit.actor == member
    assert AuditEvent.objects.filter(action="notice.extend_link_use", actor=member).exists()


def test_only_the_digest_of_the_secret_is_stored(warned):
    secret, _stack = warned
    link = ExtendLink.objects.get(user__username="mateo")
    assert link.digest == digest_of(secret) != secret
    assert len(secret) == 43  # 32 random bytes

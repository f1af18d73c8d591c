"""Renewing a lease: the audit trail describes what happened to the stored lease, not to a stale copy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import AuditEvent
from provisioning.models import Stack, Status
from provisioning.services import lifecycle

pytestmark = pytest.mark.django_db


def test_the_audit_says_shortened_when_the_stored_lease_was_cut(member, project):
    stored_end = timezone.now() + timedelta(hours=2)
    stack = Stack.objects.create(project=project, name="leased", status=Status.RUNNING, expires_at=stored_end)
    stale = Stack.objects.get(pk=stack.pk)
    stale.expires_at = timezone.now() + timedelta(minutes=10)  # a page loaded before someone extended it

    renewed = lifecycle.stack_renew_lease(user=member, stack=stale, lease_seconds=3600, shorten=True)

    assert renewed.expires_at < stored_end
    assert AuditEvent.objects.get(action="stack.renew_lease").detail["shortened"] is True


def test_the_audit_says_not_shortened_when_the_stored_lease_grew(member, project):
    stack = Stack.objects.create(
        project=project, name="leased", status=Status.RUNNING, expires_at=timezone.now() + timedelta(minutes=10)
    )
    stale = Stack.objects.get(pk=stack.pk)
    stale.expires_at = timezone.now() + timedelta(hours=3)  # a copy that claims a later end than the row's

    lifecycle.stack_renew_lease(user=member, stack=stale, lease_seconds=3600, shorten=True)

    assert AuditEvent.objects.get(action="stack.renew_lease").detail["shortened"] is False

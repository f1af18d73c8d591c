"""Fixtures of the notices' tests: stacks without a build, people with mail addresses, a webhook
receiver on loopback, and a guard that fails a test before any connection leaves loopback."""

from __future__ import annotations

import ipaddress
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import Stack, Status
from tests.notices.webhook_receiver import WebhookReceiver

SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Should an address check ever let one through, the test fails instead of sending traffic out."""
    real_connect = socket.socket.connect

    def connect(sock, address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"a test tried to connect to {host}")
        return real_connect(sock, address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def people(owner, member, viewer, outsider):
    """Everyone with a mail address: owner and member may act, the viewer may not, the outsider is elsewhere."""
    for person in (owner, member, viewer, outsider):
        person.email = f"{person.username}@example.org"
        person.save(update_fields=["email"])
    return {"owner": owner, "member": member, "viewer": viewer, "outsider": outsider}


@pytest.fixture
def make_stack(project):
    """``make_stack(name, ends_in=timedelta, age=timedelta, project=...)``: a running stack row (no VMs)."""

    def make(name: str = "web", *, ends_in: timedelta = timedelta(hours=2), age: timedelta | None = None, **fields):
        now = timezone.now()
        stack = Stack.objects.create(
            project=fields.pop("project", project),
            name=name,
            status=fields.pop("status", Status.RUNNING),
            expires_at=now + ends_in,
            **fields,
        )
        if age is not None:
            Stack.objects.filter(pk=stack.pk).update(created_at=now - age)
            stack.refresh_from_db()
        return stack

    return make


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def webhook(project, receiver):
    """The project's webhook, pointing at the receiver (127.0.0.1 is allowlisted in tests/settings.py)."""
    project.webhook_url = receiver.url
    project.webhook_secret = SECRET
    project.save(update_fields=["webhook_url", "webhook_secret"])
    return receiver

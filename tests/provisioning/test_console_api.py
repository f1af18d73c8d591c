"""``POST /api/v1/instances/{id}/console/``: who gets a ticket, what it looks like, how it is kept."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from provisioning.models import ConsoleTicket, Instance, Status
from tests.provisioning.test_console_helpers import make_running_instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(project):
    return make_running_instance(project)


def url_for(instance) -> str:
    return f"/api/v1/instances/{instance.pk}/console/"


def _ticket(url: str) -> str:
    return parse_qs(urlsplit(url).query)["ticket"][0]


@pytest.mark.parametrize("kind", ["vnc", "serial"])
def test_a_member_gets_a_websocket_url_with_a_one_minute_ticket(api, member, instance, kind):
    before = timezone.now()
    response = api(member).post(url_for(instance), {"kind": kind}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    parts = urlsplit(body["url"])
    assert (parts.scheme, parts.netloc, parts.path) == ("ws", "testserver", f"/ws/consoles/{kind}/")
    ticket = _ticket(body["url"])
    assert len(ticket) >= 43  # 256 random bits
    row = ConsoleTicket.objects.get()
    assert (row.user, row.instance, row.kind) == (member, instance, kind)
    assert row.digest == hashlib.sha256(ticket.encode()).hexdigest()
    assert ticket not in {row.digest, row.client_address}  # only the digest is kept
    assert before + timedelta(seconds=59) <= row.expires_at <= timezone.now() + timedelta(seconds=60)


def test_a_request_over_tls_gets_a_wss_url(api, owner, instance):
    response = api(owner).post(url_for(instance), {"kind": "vnc"}, format="json", secure=True)
    assert response.status_code == 201, response.content
    assert response.json()["url"].startswith("wss://testserver/ws/consoles/vnc/?ticket=")


def test_tickets_differ_every_time(api, member, instance):
    client = api(member)
    urls = {client.post(url_for(instance), {"kind": "vnc"}, format="json").json()["url"] for _ in range(3)}
    assert len(urls) == 3


def test_operators_get_tickets_everywhere(api, operator, instance):
    assert api(operator).post(url_for(instance), {"kind": "vnc"}, format="json").status_code == 201


def test_a_viewer_may_not_open_a_console(api, viewer, instance):
    response = api(viewer).post(url_for(instance), {"kind": "vnc"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not ConsoleTicket.objects.exists()


def test_another_projects_instance_is_not_found(api, outsider, instance):
    response = api(outsider).post(url_for(instance), {"kind": "vnc"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not ConsoleTicket.objects.exists()


def test_anonymous_callers_are_not_authenticated(api, instance):
    response = api().post(url_for(instance), {"kind": "vnc"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("body", [{}, {"kind": "rdp"}, {"kind": ""}])
def test_the_kind_must_be_vnc_or_serial(api, member, instance, body):
    response = api(member).post(url_for(instance), body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "kind" in response.json()["fields"]


@pytest.mark.parametrize("status", [Status.PENDING, Status.BUILDING, Status.ERROR, Status.DELETING])
def test_an_instance_that_is_not_running_has_no_console(api, member, instance, status):
    Instance.objects.filter(pk=instance.pk).update(status=status)
    response = api(member).post(url_for(instance), {"kind": "serial"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"


def test_a_stack_being_deleted_has_no_console(api, member, instance):
    instance.stack.status = Status.DELETING
    instance.stack.save()
    assert api(member).post(url_for(instance), {"kind": "vnc"}, format="json").status_code == 409


def test_an_instance_without_a_vnc_port_has_no_vnc_console(api, member, project):
    instance = make_running_instance(project, vnc_port=None)
    response = api(member).post(url_for(instance), {"kind": "vnc"}, format="json")
    assert response.status_code == 409
    assert api(member).post(url_for(instance), {"kind": "serial"}, format="json").status_code == 201


def test_the_open_console_limit_is_checked_when_asking(api, member, instance, settings):
    settings.CONSOLE_MAX_OPEN_PER_USER = 1
    now = timezone.now()
    ConsoleTicket.objects.create(
        digest="0" * 64, user=member, instance=instance, kind="vnc", expires_at=now, opened_at=now, last_seen_at=now
    )
    response = api(member).post(url_for(instance), {"kind": "vnc"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "quota_exceeded"
    # A session whose process died stops counting once its heartbeat is old.
    ConsoleTicket.objects.update(last_seen_at=now - timedelta(minutes=5))
    assert api(member).post(url_for(instance), {"kind": "vnc"}, format="json").status_code == 201


def test_the_password_never_leaves_the_portal(api, member, instance):
    body = api(member).post(url_for(instance), {"kind": "vnc"}, format="json").content.decode()
    assert instance.vnc_password not in body
    stack = api(member).get(f"/api/v1/stacks/{instance.stack_id}/").content.decode()
    assert instance.vnc_password not in stack


def test_new_instances_get_their_own_vnc_password(project):
    first, second = make_running_instance(project, password=""), Instance()
    assert len(second.vnc_password) == 8
    assert second.vnc_password != Instance().vnc_password
    assert first.vnc_password == ""


def test_ticket_rows_are_pruned_a_day_after_their_use_and_live_sessions_stay(member, instance):
    from provisioning.consoles.tickets import PRUNE_AFTER, console_tickets_prune

    now = timezone.now()
    old = now - PRUNE_AFTER - timedelta(minutes=1)
    recent = now - timedelta(minutes=5)

    def row(**fields):
        fields = {"expires_at": now, **fields}
        return ConsoleTicket.objects.create(
            digest=secrets.token_hex(32), user=member, instance=instance, kind="vnc", **fields
        ).pk

    gone = {
        row(expires_at=old),  # never used
        row(expires_at=old, used_at=old, opened_at=old, closed_at=old),  # closed long ago
        row(expires_at=old, used_at=old, opened_at=old, last_seen_at=old),  # its process died
    }
    kept = {
        row(),  # waiting to be used
        row(expires_at=old, used_at=old, opened_at=old, last_seen_at=recent),  # a long session, still beating
        row(expires_at=recent, used_at=recent, opened_at=recent, closed_at=recent),  # closed today
    }
    assert console_tickets_prune(now=now) == len(gone)
    assert set(ConsoleTicket.objects.values_list("pk", flat=True)) == kept

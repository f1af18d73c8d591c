"""The dashboard at /: a tenant's stacks, leases ending, quotas and events; operators also see the hosts."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.dashboard import RECENT_EVENTS_SHOWN, failing_hosts
from portal.models import Role
from provisioning.models import Stack, StackEvent, Status
from tests.factories import HostFactory, MembershipFactory, ProjectFactory, UserFactory


def make_stack(project, name, *, status=Status.RUNNING, ends_in=timedelta(hours=4)):
    return Stack.objects.create(project=project, name=name, status=status, expires_at=timezone.now() + ends_in)


_host_numbers = itertools.count()


def make_host(**fields):
    """A host row with a URI of its own (URIs are unique; the dashboard never connects to them)."""
    return HostFactory(uri=f"test:///dashboard-{next(_host_numbers)}", **fields)


@pytest.fixture
def page(client):
    def open_as(user):
        client.force_login(user)
        response = client.get("/")
        assert response.status_code == 200
        return response

    return open_as


def test_dashboard_is_home_and_needs_a_login(client, db):
    assert reverse("home") == reverse("dashboard") == "/"
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_signing_in_lands_on_the_dashboard(client, member):
    response = client.post("/login/", {"username": member.username, "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "portal/dashboard.html" in [template.name for template in response.templates]


def test_shows_the_users_active_stacks_and_not_others(page, member, project, other_project):
    make_stack(project, "web-one")
    make_stack(project, "building-one", status=Status.BUILDING)
    make_stack(project, "gone", status=Status.DELETED)
    make_stack(other_project, "not-mine")
    response = page(member)
    html = response.content.decode()
    assert "web-one" in html
    assert "building-one" in html
    assert "gone" not in html
    assert "not-mine" not in html
    assert [stack.name for stack in response.context["dashboard"].active_stacks] == ["web-one", "building-one"]
    assert '<time datetime="' in html  # moments go through the |when filter


def test_leases_ending_within_the_hour_link_to_the_stack_page(page, member, project):
    soon = make_stack(project, "ending", ends_in=timedelta(minutes=20))
    make_stack(project, "later", ends_in=timedelta(hours=3))
    make_stack(project, "being-deleted", status=Status.DELETING, ends_in=timedelta(minutes=5))
    response = page(member)
    assert response.context["dashboard"].ending_soon == [soon]
    html = response.content.decode()
    assert "Leases ending within 1 hour" in html
    assert f'href="/stacks/{soon.pk}/">Extend the lease' in html


def test_no_warning_when_no_lease_ends_soon(page, member, project):
    make_stack(project, "later", ends_in=timedelta(hours=3))
    assert "Leases ending" not in page(member).content.decode()


def test_project_cards_show_quota_gauges_role_and_members_link(page, member, project):
    project.max_stacks = 4
    project.save()
    make_stack(project, "one")
    html = page(member).content.decode()
    assert 'role="progressbar"' in html
    assert 'aria-label="alpha: stacks" aria-valuenow="1" aria-valuemin="0" aria-valuemax="4"' in " ".join(html.split())
    assert "1 of 4 stacks" in html  # the visible label, not only the bar
    assert f'href="/projects/{project.pk}/members/"' in html
    assert ">Member</span>" in html


def test_recent_events_are_scoped_and_capped(page, member, project, other_project):
    mine = make_stack(project, "mine")
    theirs = make_stack(other_project, "theirs")
    for index in range(RECENT_EVENTS_SHOWN + 3):
        StackEvent.objects.create(stack=mine, message=f"step {index}")
    StackEvent.objects.create(stack=theirs, message="secret step of beta")
    response = page(member)
    events = response.context["dashboard"].recent_events
    assert len(events) == RECENT_EVENTS_SHOWN
    assert events[0].message == f"step {RECENT_EVENTS_SHOWN + 2}"  # newest first
    assert "secret step of beta" not in response.content.decode()


def test_first_time_user_is_told_to_ask_an_operator(page, db):
    newcomer = UserFactory(username="newbie")
    html = page(newcomer).content.decode()
    assert "You are not in any project yet" in html
    assert "Ask an operator to add you to a project" in html
    assert "Active stacks" not in html


def test_tenants_do_not_see_hosts(page, member, project):
    make_host(name="hv-1", healthy=False, health_error="connection refused")
    html = page(member).content.decode()
    assert "hv-1" not in html
    assert "Capacity handed out" not in html


def test_operator_sees_capacity_and_failing_hosts(page, operator, project):
    now = timezone.now()
    make_host(name="hv-ok", last_checked_at=now)
    make_host(name="hv-down", healthy=False, health_error="connection refused", last_checked_at=now)
    make_host(name="hv-off", enabled=False, last_checked_at=now)
    response = page(operator)
    html = response.content.decode()
    failing = {row.host.name: row.problems for row in response.context["dashboard"].operator.failing_hosts}
    assert failing == {"hv-down": ["unhealthy"], "hv-off": ["disabled"]}
    assert "connection refused" in html
    assert "Capacity handed out" in html
    assert 'aria-label="hv-ok: vCPUs"' in html
    # Operators see every project's card, marked as theirs to manage.
    assert ">Operator</span>" in html
    assert f'href="/projects/{project.pk}/members/"' in html


def test_hosts_not_checked_lately_count_as_failing(db):
    now = timezone.now()
    make_host(name="fresh", last_checked_at=now - timedelta(minutes=2))
    make_host(name="stale", last_checked_at=now - timedelta(hours=1))
    make_host(name="never", last_checked_at=None)
    make_host(name="off-and-stale", enabled=False, last_checked_at=now - timedelta(hours=1))
    rows = {row.host.name: row.problems for row in failing_hosts(now)}
    assert rows == {
        "never": ["not checked recently"],
        "off-and-stale": ["disabled"],  # disabled hosts are not re-read, so staleness says nothing
        "stale": ["not checked recently"],
    }


def queries_for(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    return len(captured)


def test_queries_do_not_grow_with_projects_stacks_or_events(client, operator):
    client.force_login(operator)

    def grow(count: int) -> None:
        for _ in range(count):
            project = ProjectFactory()
            MembershipFactory(project=project, user=operator, role=Role.MEMBER)
            stack = make_stack(project, "s", ends_in=timedelta(minutes=10))
            StackEvent.objects.create(stack=stack, message="built")
            make_host(healthy=False)

    grow(2)
    few = queries_for(client)
    grow(8)
    assert queries_for(client) == few

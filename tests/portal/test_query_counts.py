"""Pages cost the same number of queries for 2 rows as for 20 (no query per row): lists and detail pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.models import Role
from provisioning.models import Instance, Stack, Status
from provisioning.services import launch
from tests.factories import ApplianceVersionFactory, MembershipFactory, ProjectFactory


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.fixture
def many(member, project, test_host, ready_version):
    project.max_instances = project.max_vcpus = project.max_stacks = 100
    project.save()

    def grow(count: int) -> None:
        for index in range(count):
            launch.stack_launch(
                user=member,
                project=project,
                name=f"s{index}-{count}",
                appliance_version=ready_version,
                lease_seconds=600,
            )
            ApplianceVersionFactory(appliance__feed__project=project)
            MembershipFactory(user=member, project=ProjectFactory(), role=Role.MEMBER)

    return grow


@pytest.mark.parametrize("url", ["/api/v1/stacks/", "/api/v1/appliances/", "/api/v1/projects/", "/api/v1/feeds/"])
def test_list_queries_do_not_grow_with_rows(api, member, many, url):
    client = api(member)
    many(2)
    few = queries_for(client, url)
    many(18)
    assert queries_for(client, url) == few


def test_stack_pages_do_not_grow_with_rows(client, member, many):
    client.force_login(member)
    many(2)
    few = queries_for(client, "/stacks/")
    many(18)
    assert queries_for(client, "/stacks/") == few


@pytest.fixture
def tiered_stack(member, project, test_host):
    """``grow(n)`` gives the stack ``n`` more instances, each of its own appliance version and image."""
    stack = Stack.objects.create(
        project=project, name="tiered", status=Status.RUNNING, expires_at=timezone.now() + timedelta(hours=1)
    )

    def grow(count: int) -> Stack:
        start = stack.instances.count()
        for index in range(start, start + count):
            Instance.objects.create(
                stack=stack,
                name=f"tiered-t{index}-1",
                role=f"t{index}",
                appliance_version=ApplianceVersionFactory(appliance__feed__project=project),
                host=test_host,
                vcpus=1,
                memory_mib=128,
                status=Status.RUNNING,
                domain_name=f"tiered-{index}",
            )
        return stack

    return grow


@pytest.mark.parametrize("page", ["/stacks/{id}/", "/stacks/{id}/status/", "/api/v1/stacks/{id}/"])
def test_a_stack_page_costs_the_same_for_one_tier_as_for_six(client, member, tiered_stack, page):
    client.force_login(member)
    stack = tiered_stack(1)
    url = page.format(id=stack.pk)
    few = queries_for(client, url)
    tiered_stack(5)
    assert queries_for(client, url) == few


def test_an_appliance_page_costs_the_same_for_two_versions_as_for_twenty(client, member, project):
    client.force_login(member)
    first = ApplianceVersionFactory(appliance__feed__project=project, version="1.0.0")
    appliance = first.appliance

    def grow(count: int) -> None:
        start = appliance.versions.count()
        for index in range(start, start + count):
            ApplianceVersionFactory(appliance=appliance, version=f"1.0.{index}")

    grow(1)
    url = f"/catalog/appliances/{appliance.pk}/"
    few = queries_for(client, url)
    grow(18)
    assert queries_for(client, url) == few


def test_a_members_page_costs_the_same_for_three_members_as_for_twenty(client, owner, member, project):
    client.force_login(owner)
    url = f"/projects/{project.pk}/members/"
    few = queries_for(client, url)
    for _ in range(18):
        MembershipFactory(project=project, role=Role.MEMBER)
    assert queries_for(client, url) == few

"""List endpoints cost the same number of queries for 2 rows as for 20 (no query per row)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import Role
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

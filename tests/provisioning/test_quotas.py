"""Project quotas for whole stacks: every limit, counted over what the project holds, under parallel launches."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import errors
from portal.models import AuditEvent
from provisioning import quotas
from provisioning.models import Instance, PublishedPort, Stack, StackEvent, Status
from provisioning.services.launch import stack_launch
from tests.factories import HostFactory, MembershipFactory, ProjectFactory
from tests.provisioning.placement_support import THREE_TIER, demand, in_parallel, launch_stack, room_for


@pytest.fixture
def version(db):
    from tests.factories import ApplianceVersionFactory

    return ApplianceVersionFactory()


@pytest.fixture
def big_host(db):
    return HostFactory(name="big", **room_for(100))


def launch(project, version, wanted=THREE_TIER, name="s"):
    return launch_stack(project, wanted, version=version, name=name)


# Refusals first.


@pytest.mark.parametrize(
    ("limit", "value", "message"),
    [
        ("max_stacks", 0, "may hold 0 stacks, 0 are in use and this stack needs 1"),
        ("max_instances", 2, "may hold 2 instances, 0 are in use and this stack needs 3"),
        ("max_vcpus", 3, "may hold 3 vCPUs, 0 are in use and this stack needs 4"),
        ("max_memory_mib", 1023, "may hold 1023 MiB of memory, 0 are in use and this stack needs 1024"),
        ("max_disk_gib", 7, "may hold 7 GiB of disk, 0 are in use and this stack needs 8"),
        ("max_lease_seconds", 3599, "allows leases of at most 59 minutes 59 seconds and this stack asks for 1 hour"),
    ],
)
def test_each_limit_refuses_the_whole_stack_and_names_itself(project, version, big_host, limit, value, message):
    setattr(project, limit, value)
    project.save()
    with pytest.raises(errors.QuotaExceeded, match=f"^quota exceeded: project 'alpha' {message}$") as refused:
        launch(project, version)
    assert refused.value.status == 403
    assert not Stack.objects.exists()
    assert not Instance.objects.exists()


def test_what_is_in_use_counts(project, version, big_host):
    project.max_instances = 10
    project.save()
    launch(project, version, name="one")
    launch(project, version, name="two")
    launch(project, version, wanted=demand((1, 128, 0), (1, 128, 0), (1, 128, 0)), name="three")
    with pytest.raises(errors.QuotaExceeded, match="may hold 10 instances, 9 are in use and this stack needs 3"):
        launch(project, version, name="four")
    launch(project, version, wanted=demand((1, 128, 0)), name="one-more")  # the tenth fits


def test_every_limit_passed_is_named_at_once(project, version, big_host):
    project.max_instances, project.max_vcpus, project.max_lease_seconds = 1, 1, 60
    project.save()
    with pytest.raises(errors.QuotaExceeded) as refused:
        launch(project, version)
    assert refused.value.detail == (
        "quota exceeded: project 'alpha' may hold 1 instances, 0 are in use and this stack needs 3; "
        "it may hold 1 vCPUs, 0 are in use and this stack needs 4; "
        "it allows leases of at most 1 minute and this stack asks for 1 hour"
    )


@pytest.mark.parametrize(
    ("status", "counts"),
    [
        (Status.PENDING, True),
        (Status.BUILDING, True),
        (Status.RUNNING, True),
        (Status.ERROR, True),  # a failed stack holds its quota until it is deleted
        (Status.DELETING, True),
        (Status.DELETED, False),
    ],
)
def test_which_stacks_hold_quota(project, version, big_host, status, counts):
    launch(project, version)
    Stack.objects.update(status=status)
    Instance.objects.update(status=status)
    held = {line.key: line.used for line in quotas.project_usage(project)}
    expected = {"stacks": 1, "instances": 3, "vcpus": 4, "memory_mib": 1024, "disk_gib": 8}
    assert held == (expected if counts else dict.fromkeys(expected, 0))


def test_usage_of_every_project_costs_one_query(member, project, version, big_host):
    launch(project, version)
    for n in range(5):
        MembershipFactory(user=member, project=ProjectFactory(name=f"more-{n}"))
    with CaptureQueriesContext(connection) as captured:
        overview = quotas.quota_overview(member)
    assert len(captured) == 1
    lines = {entry.project.name: {line.key: (line.used, line.limit) for line in entry.lines} for entry in overview}
    assert lines["alpha"] == {
        "stacks": (1, 5),
        "instances": (3, 10),
        "vcpus": (4, 16),
        "memory_mib": (1024, 16384),
        "disk_gib": (8, 200),
    }
    assert lines["more-0"]["instances"] == (0, 10)
    assert overview[0].longest_lease == "7 days"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (60, "1 minute"),
        (5400, "1 hour 30 minutes"),
        (7200, "2 hours"),
        (61, "1 minute 1 second"),
        (604799, "6 days 23 hours"),
    ],
)
def test_leases_read_the_one_way(seconds, text):
    assert quotas.describe_seconds(seconds) == text


# Parallel launches on PostgreSQL: the project row lock lines them up, so none passes a limit.


@pytest.mark.django_db(transaction=True)
def test_parallel_three_tier_launches_against_ten_instances_accept_exactly_three(project, version):
    HostFactory(name="big", **room_for(100))
    project.max_instances = 10
    project.save()
    outcomes = in_parallel(12, lambda n: launch(project, version, name=f"p{n}") and "ok")
    assert outcomes == Counter({"ok": 3, "quota_exceeded": 9})
    assert Stack.objects.count() == 3
    assert Instance.objects.count() == 9


@pytest.mark.django_db(transaction=True)
def test_parallel_launches_against_a_quota_of_k_leave_nothing_behind(member, project, test_host, ready_version):
    """Ten one-tier launches at once through the launch service against a quota of four instances."""
    project.max_instances = 4
    project.save()

    def attempt(n: int) -> str:
        stack_launch(user=member, project=project, name=f"burst-{n}", appliance_version=ready_version)
        return "ok"

    assert in_parallel(10, attempt) == Counter({"ok": 4, "quota_exceeded": 6})
    accepted = set(Stack.objects.values_list("pk", flat=True))
    assert len(accepted) == 4
    assert Instance.objects.count() == 4
    assert set(StackEvent.objects.values_list("stack", flat=True)) == accepted
    assert AuditEvent.objects.filter(action="stack.launch").count() == 4
    ports = list(PublishedPort.objects.values_list("host_port", flat=True))
    assert len(ports) == len(set(ports)) <= 4  # reserved once each (a failed build gives its port back)

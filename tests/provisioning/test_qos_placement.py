"""Placement and quality of service: dedicated CPUs (pinned one vCPU each, never shared, given back
on delete, never double-booked by a burst of launches) and each host's memory overcommit."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from portal import errors
from portal.models import Project
from provisioning import qos
from provisioning.demand import StackDemand
from provisioning.models import Flavor, Host, Instance, Stack, Status
from provisioning.placement import claim_host
from provisioning.qos import domain_qos
from provisioning.services import lifecycle, templates
from provisioning.services.launch import stack_launch_template
from tests.factories import HostFactory, ProjectFactory
from tests.provisioning.placement_support import demand, in_parallel

DEDICATED = """
tiers:
  - name: db
    appliance: demo-db
    flavor: pinned
"""


@pytest.fixture
def pinned_template(operator, demo_catalog):
    Flavor.objects.create(name="pinned", vcpus=2, memory_mib=128, disk_gib=1, dedicated_cpus=True)
    return templates.template_create(user=operator, project=None, name="pinned-db", source=DEDICATED)


@pytest.fixture
def launch(member, project, pinned_template, step):
    Project.objects.filter(pk=project.pk).update(max_stacks=10, max_instances=10, max_vcpus=100)

    def run(name: str) -> Stack:
        stack = step(lambda: stack_launch_template(user=member, project=project, name=name, template=pinned_template))
        stack.refresh_from_db()
        return stack

    return run


def test_each_vcpu_gets_a_dedicated_cpu_of_its_own_until_none_is_left(launch, test_host, member, step):
    Host.objects.filter(pk=test_host.pk).update(dedicated_cpu_set="2-5")
    first, second = launch("one"), launch("two")
    assert first.status == Status.RUNNING, first.status_reason
    pins = [stack.instances.get().pinned_cpus for stack in (first, second)]
    assert pins == ["2,3", "4,5"]
    instance = first.instances.get()
    assert instance.qos == {"dedicated_cpus": True}
    assert domain_qos(instance=instance, host=instance.host).pinned_cpus == (2, 3)

    with pytest.raises(errors.NoCapacity, match=r"2 dedicated CPUs but no host has that many free \(.*: 0\)"):
        launch("three")

    step(lambda: lifecycle.stack_destroy(user=member, stack=first))
    assert first.instances.get().status == Status.DELETED
    assert launch("four").instances.get().pinned_cpus == "2,3"  # given back by the deleted stack


def test_with_no_dedicated_cpu_set_anywhere_the_reason_says_so(launch, test_host):
    with pytest.raises(errors.NoCapacity, match="no host that takes launches has a dedicated CPU set"):
        launch("one")


def test_a_host_whose_dedicated_cpus_are_taken_is_passed_over(db):
    project = ProjectFactory()
    full = HostFactory(name="full", uri="test:///full", dedicated_cpu_set="2-3")
    free = HostFactory(name="free", uri="test:///free", dedicated_cpu_set="0-7", memory_mib=1024)
    Instance.objects.create(
        stack=Stack.objects.create(project=project, name="held", expires_at=timezone.now() + timedelta(hours=1)),
        name="held-db",
        role="db",
        host=full,
        vcpus=2,
        memory_mib=128,
        pinned_cpus="2,3",
    )
    # Spread would take the emptier host anyway: "full" has far more memory free, so only its CPUs count.
    assert full.memory_mib > free.memory_mib
    assert _launch_pinned(project, demand((2, 128, 0)), "s") == "free"
    assert Instance.objects.get(name="s-t0").pinned_cpus == "0,1"


def _launch_pinned(project: Project, wanted: StackDemand, name: str) -> str:
    """What a launch does with dedicated CPUs: claim a host for them and take them, in one transaction."""
    with transaction.atomic():
        host = claim_host(wanted, dedicated_cpus=wanted.vcpus)
        stack = Stack.objects.create(project=project, name=name, expires_at=timezone.now() + timedelta(hours=1))
        for item in wanted.instances:
            Instance.objects.create(
                stack=stack,
                name=f"{name}-{item.tier}",
                role=item.tier,
                host=host,
                vcpus=item.vcpus,
                memory_mib=item.memory_mib,
                disk_gib=item.disk_gib,
                pinned_cpus=qos.cpu_list(qos.take_dedicated_cpus(host, item.vcpus)),
            )
    return host.name


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_parallel_launches_never_double_books_a_dedicated_cpu():
    """Ten launches of two pinned vCPUs at once onto two hosts of four dedicated CPUs each: four fit.

    Each launch is for a project of its own, so only the host claims line them up.
    """
    for name in ("a", "b"):
        HostFactory(name=name, uri=f"test:///{name}", cpus=64, dedicated_cpu_set="8-11")
    projects = [ProjectFactory(name=f"p{n}") for n in range(10)]
    wanted = demand((2, 128, 0))

    outcomes = in_parallel(10, lambda n: _launch_pinned(projects[n], wanted, f"s{n}"))

    assert outcomes == Counter({"a": 2, "b": 2, "no_capacity": 6})
    for host in Host.objects.all():
        held = [qos.pinned_cpus(instance) for instance in Instance.objects.filter(host=host)]
        cpus = [cpu for pins in held for cpu in pins]
        assert sorted(cpus) == [8, 9, 10, 11], held  # every CPU once, none twice
        assert host.generation == 2  # one claim per stack placed: the rolled-back ones left nothing


@pytest.mark.parametrize(("overcommit", "placed"), [(1, False), (2, True)])
def test_placement_honours_each_hosts_memory_overcommit(place, overcommit, placed):
    HostFactory(name="small", cpus=8, memory_mib=2048, memory_reserved_mib=0, memory_overcommit=overcommit)
    wanted = demand((1, 3000, 1))
    if placed:
        assert place(wanted) == "small"
    else:
        with pytest.raises(errors.NoCapacity, match="no host is large enough"):
            place(wanted)


def test_memory_overcommit_counts_what_a_host_already_holds(place):
    HostFactory(name="small", cpus=8, memory_mib=2048, memory_reserved_mib=0, memory_overcommit=1.5)
    assert place(demand((1, 2000, 1)), name="first") == "small"  # 2000 of 3072
    with pytest.raises(errors.NoCapacity, match="right now"):
        place(demand((1, 1100, 1)), name="second")
    assert place(demand((1, 1000, 1)), name="third") == "small"

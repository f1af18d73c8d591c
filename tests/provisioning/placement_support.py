"""What the placement tests share: demands of any size, a launch that places them, hosts with room for k stacks.

``launch_stack`` does what a launch does about quota and hosts, for a demand of any number of
tiers: lock the project, check the quota, claim a host, write the instance rows that are the claim.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from portal import errors
from portal.models import Project
from provisioning import allocations
from provisioning.demand import InstanceDemand, StackDemand
from provisioning.models import Host, Instance, Stack
from provisioning.placement import claim_host
from provisioning.quotas import check_stack_quota

GIB = 1024**3


def demand(*sizes: tuple[int, int, int], arch: str = "x86_64", domain_type: str | None = None) -> StackDemand:
    """A stack of one tier per (vCPUs, MiB, GiB) size."""
    return StackDemand(
        instances=tuple(
            InstanceDemand(tier=f"t{n}", vcpus=v, memory_mib=m, disk_gib=d, arch=arch, domain_type=domain_type)
            for n, (v, m, d) in enumerate(sizes)
        ),
        lease_seconds=3600,
    )


THREE_TIER = demand((1, 256, 2), (1, 256, 2), (2, 512, 4))  # 4 vCPU, 1024 MiB, 8 GiB


def launch_stack(project: Project, wanted: StackDemand, *, version, name: str = "s", strategy=None) -> Stack:
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        check_stack_quota(locked, wanted)
        host = claim_host(wanted, strategy=strategy)
        stack = Stack.objects.create(
            project=locked, name=name, expires_at=timezone.now() + timedelta(seconds=wanted.lease_seconds)
        )
        Instance.objects.bulk_create(
            Instance(
                stack=stack,
                name=f"{name}-{item.tier}",
                role=item.tier,
                appliance_version=version,
                host=host,
                vcpus=item.vcpus,
                memory_mib=item.memory_mib,
                disk_gib=item.disk_gib,
            )
            for item in wanted.instances
        )
    return stack


def host_of(stack: Stack) -> str:
    (name,) = set(stack.instances.values_list("host__name", flat=True))  # every tier on one host
    return name


def occupy(host: Host, project: Project, version, *sizes: tuple[int, int], name: str = "held") -> None:
    """A stack already on ``host`` with one instance per (vCPUs, MiB) size, counted on the host as a claim counts it."""
    stack = Stack.objects.create(project=project, name=name, expires_at=timezone.now() + timedelta(hours=1))
    for n, (vcpus, memory_mib) in enumerate(sizes):
        Instance.objects.create(
            stack=stack,
            name=f"{name}-{n}",
            role="r",
            appliance_version=version,
            host=host,
            vcpus=vcpus,
            memory_mib=memory_mib,
        )
    allocations.recount(host=host)


def room_for(stacks: int, wanted: StackDemand = THREE_TIER, **fields) -> dict:
    """Host fields giving room for exactly ``stacks`` stacks of ``wanted`` (RAM is what runs out)."""
    return {
        "cpus": 64,
        "cpu_overcommit": 1,
        "memory_mib": 512 + stacks * wanted.memory_mib,
        **fields,
    }


def in_parallel(count: int, attempt) -> Counter:
    """Run ``attempt(index)`` in ``count`` threads at once (each its own connection); count the outcomes.

    An outcome is what ``attempt`` returned, a domain error's code, or any other error's type and text.
    """
    outcomes: Counter = Counter()
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            outcomes[attempt(index)] += 1
        except errors.PortalError as exc:
            outcomes[exc.code] += 1
        except Exception as exc:
            outcomes[f"{type(exc).__name__}: {exc}"] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes

"""What placement has handed out on each host, kept on the host row (``Host.allocated_*``).

A host's counters are the vCPUs, MiB of RAM, GiB of disk and number of its instances in
``ACTIVE_STATUSES``. Placement reads them instead of summing the host's instances on every launch.

- The claim adds a stack's demand to the host it claims, in the statement that claims it
  (``placement_sql.claim``); the launch writes the instance rows in the same transaction, so a
  launch that fails after its claim takes the addition back with it.
- An instance gives its share back in the transaction that makes it stop counting: its teardown
  marking it deleted (``release``), or its row being deleted (a stack or project deleted by an
  operator: ``instance_row_deleted``). A failed build keeps its host's room until the stack is
  deleted, as it keeps its quota: an instance in error still counts. Instances never change hosts.
- ``recount`` computes a host's counters from its instances again, under the host's row lock. The
  reconciler runs it for every host it visits, so counters that drifted (rows changed by hand in
  the database) heal within one reconciliation.

Every write of a counter takes the host's row lock, as the claim does, so counters and the
instance rows they sum change together.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from provisioning.models import ACTIVE_STATUSES, COMPUTE_STATUSES, Host, Instance

logger = logging.getLogger(__name__)

# Each counter and the instance field it sums; vCPUs and memory only over ``COMPUTE_STATUSES`` (a
# shelved instance holds its disk and its place in the count, not its vCPUs and memory).
_COMPUTING = Q(status__in=COMPUTE_STATUSES)
COUNTED = {
    "allocated_vcpus": Sum("vcpus", filter=_COMPUTING),
    "allocated_memory_mib": Sum("memory_mib", filter=_COMPUTING),
    "allocated_disk_gib": Sum("disk_gib"),
    "allocated_instances": Count("id"),
}
COMPUTE_COUNTERS = ("allocated_vcpus", "allocated_memory_mib")


def release(instances: QuerySet[Instance]) -> None:
    """Give back to their hosts what ``instances`` hold; call in the transaction that makes them stop counting.

    Only instances that count (``ACTIVE_STATUSES``, on a host) are given back, so releasing an
    instance twice, or one that never counted, changes nothing.
    """
    for row in _held_per_host(instances):
        _take_back(row["host_id"], row)


def hold(instances: QuerySet[Instance]) -> None:
    """Add to their hosts what ``instances`` hold: the opposite of ``release``, for instances put back on
    a host in the transaction that puts them there (a move to another host that failed)."""
    for row in _held_per_host(instances):
        Host.objects.filter(pk=row["host_id"]).update(**{name: F(name) + row[name] for name in COUNTED})


def _held_per_host(instances: QuerySet[Instance]) -> list[dict[str, Any]]:
    """What the counting ``instances`` hold, summed per host, hosts in the order of their ids (so that
    two writers never wait for each other's rows in turn)."""
    held = (
        instances.filter(status__in=ACTIVE_STATUSES, host__isnull=False)
        .order_by()
        .values("host_id")
        .annotate(**{name: Coalesce(total, 0) for name, total in COUNTED.items()})
    )
    return sorted(held, key=lambda row: row["host_id"])


def instance_row_deleted(instance: Instance) -> None:
    """An instance row is being deleted (``pre_delete``): give back what it held, if it counted."""
    if instance.host_id is None or instance.status not in ACTIVE_STATUSES:
        return
    computing = instance.status in COMPUTE_STATUSES
    _take_back(
        instance.host_id,
        {
            "allocated_vcpus": instance.vcpus if computing else 0,
            "allocated_memory_mib": instance.memory_mib if computing else 0,
            "allocated_disk_gib": instance.disk_gib,
            "allocated_instances": 1,
        },
    )


def release_compute(instances: QuerySet[Instance]) -> None:
    """Give back the vCPUs and memory ``instances`` hold; call in the transaction that shelves them.

    Only instances in ``COMPUTE_STATUSES`` give anything back, so shelving twice changes nothing.
    """
    held = (
        instances.filter(status__in=COMPUTE_STATUSES, host__isnull=False)
        .order_by()
        .values("host_id")
        .annotate(**{name: Coalesce(COUNTED[name], 0) for name in COMPUTE_COUNTERS})
    )
    for row in sorted(held, key=lambda row: row["host_id"]):
        Host.objects.filter(pk=row["host_id"]).update(**{name: F(name) - row[name] for name in COMPUTE_COUNTERS})


def claim_compute(*, host: Host, vcpus: int, memory_mib: int) -> bool:
    """Take ``vcpus`` and ``memory_mib`` on ``host`` for instances coming back from the shelf.

    Call in the transaction that moves them into ``COMPUTE_STATUSES``. False (nothing taken) when the
    host takes no new work (disabled, unhealthy, draining) or has no room for them next to what it holds.
    """
    locked = Host.objects.select_for_update().filter(pk=host.pk).first()
    if locked is None or not (locked.enabled and locked.healthy and not locked.draining):
        return False
    memory_room = int(locked.memory_capacity_mib * locked.memory_overcommit) - locked.allocated_memory_mib
    if locked.allocated_vcpus + vcpus > locked.vcpu_capacity or memory_mib > memory_room:
        return False
    Host.objects.filter(pk=host.pk).update(
        allocated_vcpus=F("allocated_vcpus") + vcpus,
        allocated_memory_mib=F("allocated_memory_mib") + memory_mib,
        generation=F("generation") + 1,  # launches that weighed the host before this read it again
    )
    return True


def _take_back(host_id: int, amounts: dict[str, Any]) -> None:
    Host.objects.filter(pk=host_id).update(**{name: F(name) - amounts[name] for name in COUNTED})


def recount(*, host: Host) -> bool:
    """Set ``host``'s counters to what its instances hold; True if they had drifted (then logged).

    The host's row is locked first: a launch that claimed the host commits its instance rows before
    the lock is granted, and the sums, read by the next statement, see them. A recount that changes
    the counters bumps the host's generation, so a launch that weighed the host by the old ones
    claims it only after reading it again.
    """
    with transaction.atomic():
        current = Host.objects.select_for_update().filter(pk=host.pk).values(*COUNTED).first()
        if current is None:
            return False
        held = Instance.objects.filter(host_id=host.pk, status__in=ACTIVE_STATUSES).aggregate(
            **{name: Coalesce(total, 0) for name, total in COUNTED.items()}
        )
        if held == current:
            return False
        Host.objects.filter(pk=host.pk).update(**held, generation=F("generation") + 1)
    logger.warning("host %s: allocation counters were %s, its instances hold %s; recounted", host.name, current, held)
    return True

"""Resizing a stack's tier: new vCPUs, memory or disk for every instance of one tier.

Accepting (``stack_resize``) claims the difference as a launch claims its size, in one transaction
under the stack's, the project's and the host's row locks (the order unshelving takes them): the
project's quota, then room on the stack's own host (a stack lives on one host; moving it elsewhere
is an operator's action). The instance rows take their new sizes and the host's counters move by
the difference in that transaction, so counters and rows stay equal (``allocations.recount``);
shrinking gives back at once. Disks only grow.

The job (``resize_job``) then changes each domain: the disk first (the one change that cannot be
taken back), then memory, then vCPUs. A running guest gets what it can take now: vCPUs up to the
room its domain was defined with (``resize_limits``), memory through its balloon when the guest
honours it; the rest goes into the definition, the instance is marked ``restart_needed`` and the
operation's result says ``at_restart``. A stopped instance gets everything in its definition and
its next start uses it. A change the host refuses is given back (row and counters) and named in
the result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F

from portal import errors
from portal.models import Project
from portal.scoping import User
from provisioning.demand import GIB
from provisioning.drivers import DriverError, HypervisorDriver, InvalidRequest, Unsupported
from provisioning.drivers.xml_values import MAX_VCPUS
from provisioning.models import Host, Instance, Operation, Stack, Status
from provisioning.quotas import check_more_quota
from provisioning.resize_limits import live_vcpu_room
from provisioning.services import stack_jobs
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.operations import (
    open_operation,
    operation_finished,
    operation_progress,
    operation_running,
)
from provisioning.services.stack_jobs import StackAction

logger = logging.getLogger(__name__)

RESIZE = StackAction(
    "resize", Status.RESIZING, (Status.RUNNING, Status.STOPPED), "provisioning.resize_tasks.resize_stack"
)
# How long a guest's balloon is given to reach a smaller (or larger) memory size before the change
# is left for the next restart.
BALLOON_WAIT_SECONDS = 10.0
MAX_MEMORY_MIB = 1024 * 1024
MAX_DISK_GIB = 64 * 1024
LIVE, AT_RESTART = "live", "at_restart"
# Each resizable field, the host counter it moves, and how messages name it.
FIELDS = {"vcpus": "allocated_vcpus", "memory_mib": "allocated_memory_mib", "disk_gib": "allocated_disk_gib"}
UNITS = {"vcpus": "vCPUs", "memory_mib": "MiB of memory", "disk_gib": "GiB of disk"}
ROOT_DISK = "vda"


@dataclass(frozen=True)
class NewSize:
    """What was asked for a tier: a field left None keeps its size."""

    tier: str
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gib: int | None = None

    def asked(self) -> dict[str, int]:
        return {name: value for name in FIELDS if (value := getattr(self, name)) is not None}


def stack_resize(
    *,
    user: User,
    stack: Stack,
    tier: str,
    vcpus: int | None = None,
    memory_mib: int | None = None,
    disk_gib: int | None = None,
) -> Operation:
    """Accept resizing ``tier``: claim the difference, mark the stack busy, queue the job; the operation."""
    size = NewSize(tier=tier, vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib)
    _check_bounds(size)
    opened: list[Operation] = []

    def claim(locked: Stack) -> tuple[object, ...]:
        before = claim_new_size(locked, size)
        operation = open_operation(
            kind=Operation.Kind.RESIZE,
            user=user,
            stack=locked,
            host=stack_jobs.stack_host(locked),
            request={"tier": tier, **size.asked()},
            detail=f"resize tier {tier}: waiting for a worker",
        )
        opened.append(operation)
        return (operation.pk, before)

    stack_jobs.begin(
        user=user,
        stack=stack,
        action=RESIZE,
        check=claim,
        tier=tier,
        vcpus=vcpus,
        memory_mib=memory_mib,
        disk_gib=disk_gib,
    )
    return opened[0]


def _check_bounds(size: NewSize) -> None:
    if not size.asked():
        raise errors.Invalid.for_field("tier", "say what to change: vcpus, memory_mib or disk_gib")
    for name, low, high in (("vcpus", 1, MAX_VCPUS), ("memory_mib", 16, MAX_MEMORY_MIB), ("disk_gib", 1, MAX_DISK_GIB)):
        value = getattr(size, name)
        if value is not None and not low <= value <= high:
            raise errors.Invalid.for_field(name, f"must be between {low} and {high}")


def claim_new_size(stack: Stack, size: NewSize) -> dict[str, list[int]]:
    """Under the stack's lock: check and claim ``size`` for the tier's instances; their sizes before it.

    The answer maps each instance's id (as text: it travels as JSON) to [vcpus, memory_mib, disk_gib].
    """
    instances = list(
        Instance.objects.filter(stack=stack, role=size.tier)
        .exclude(status=Status.DELETED)
        .select_related("appliance_version", "host")
    )
    if not instances:
        raise errors.Invalid.for_field("tier", f"stack '{stack.name}' has no tier '{size.tier}'")
    _check_against_tier(instances, size)
    if all(getattr(i, name) == value for i in instances for name, value in size.asked().items()):
        raise errors.Invalid.for_field("tier", f"tier '{size.tier}' already has that size")
    wanted = {name: sum(value - getattr(i, name) for i in instances) for name, value in size.asked().items()}
    project = Project.objects.select_for_update().get(pk=stack.project_id)
    more = {name: amount for name, amount in wanted.items() if amount > 0}
    if more:
        check_more_quota(project, more, what=f"resizing tier '{size.tier}'")
    host = stack_jobs.stack_host(stack)
    _claim_on_host(host, wanted)
    before = {str(i.pk): [i.vcpus, i.memory_mib, i.disk_gib] for i in instances}
    Instance.objects.filter(pk__in=[i.pk for i in instances]).update(**size.asked())
    return before


def _check_against_tier(instances: list[Instance], size: NewSize) -> None:
    for instance in instances:
        if size.disk_gib is not None and size.disk_gib < instance.disk_gib:
            raise errors.Invalid.for_field(
                "disk_gib",
                f"disks only grow: {instance.name} has {instance.disk_gib} GiB and cannot shrink to "
                f"{size.disk_gib} GiB (its file systems would be cut)",
            )
        version = instance.appliance_version
        if version is None:
            continue
        for name, least in (("vcpus", version.min_vcpus), ("memory_mib", version.min_ram_mib)):
            value = getattr(size, name)
            if value is not None and value < least:
                raise errors.Invalid.for_field(
                    name, f"{version.appliance.identifier} needs at least {least} {UNITS[name]}"
                )


def _claim_on_host(host: Host, wanted: dict[str, int]) -> None:
    """Move ``host``'s counters by ``wanted`` under its row lock (the lock launches claim it by),
    refusing growth it has no room for."""
    locked = Host.objects.select_for_update().get(pk=host.pk)
    if any(amount > 0 for amount in wanted.values()):
        if not locked.enabled or locked.draining:
            raise errors.NoCapacity(
                f"host {locked.name} takes no new work now (disabled or draining), so the stack cannot grow "
                "there; moving it to another host is an operator's action"
            )
        for name, amount in wanted.items():
            held, room = _host_room(locked, name)
            if amount > 0 and room is not None and held + amount > room:
                raise errors.NoCapacity(
                    f"host {locked.name} has no room for {amount} more {UNITS[name]} (it holds {held} of {room}); "
                    "moving the stack to another host is an operator's action"
                )
    changes: dict[str, Any] = {FIELDS[name]: F(FIELDS[name]) + amount for name, amount in wanted.items() if amount}
    if changes:
        # Launches that weighed the host before this read it again (as a claim does).
        Host.objects.filter(pk=host.pk).update(**changes, generation=F("generation") + 1)


def _host_room(host: Host, name: str) -> tuple[int, int | None]:
    """What ``host`` holds of a field and the most it may hold (None: not judged), as placement judges."""
    if name == "vcpus":
        return host.allocated_vcpus, host.vcpu_capacity
    if name == "memory_mib":
        return host.allocated_memory_mib, int(host.memory_capacity_mib * host.memory_overcommit)
    if not host.pool_capacity_bytes:
        return host.allocated_disk_gib, None  # a pool of unknown size is not judged, as in placement
    return host.allocated_disk_gib, int(host.pool_capacity_bytes * host.disk_overcommit) // GIB


# --- the job ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one instance's resize: each field's change and where it applied, and refusals."""

    instance: Instance
    changes: dict[str, dict[str, Any]]
    refused: list[dict[str, str]]

    @property
    def later(self) -> bool:
        return any(change["applied"] == AT_RESTART for change in self.changes.values())

    @property
    def restart_needed(self) -> bool:
        """It runs with its old size in part: only a restart gives it the rest (a stopped one just starts)."""
        return self.later and self.instance.status == Status.RUNNING


def resize_job(*, stack_id: int, operation_id: int, before: dict[str, list[int]]) -> str:
    """The worker's side: change every domain of the tier, then settle the stack where it was."""
    stack = stack_jobs.claim_job(stack_id, RESIZE.busy)
    if stack is None:
        operation_finished(operation_id, status=Operation.State.FAILED, detail="the stack was not waiting for it")
        return "stack is not waiting for this job"
    operation_running(operation_id, detail="resizing")
    instances = list(Instance.objects.filter(pk__in=[int(key) for key in before]).select_related("host", "stack"))
    outcomes: list[Outcome] = []
    try:
        host = stack_jobs.stack_host(stack)
        with driver_for(host) as driver:
            for done, instance in enumerate(instances):
                outcomes.append(_resize_instance(stack, driver, host, instance, before[str(instance.pk)]))
                operation_progress(operation_id, percent=100 * (done + 1) // max(1, len(instances)))
    except DriverError as exc:
        reason: str | None = exc.message
    except Exception:
        # Whatever went wrong, the claim of what was not changed is given back and the stack settles.
        logger.exception("stack %s: resize failed", stack.pk)
        reason = "the worker hit an unexpected error"
    else:
        reason = None
    if reason is not None:
        for instance in instances[len(outcomes) :]:
            outcomes.append(_refuse_all(instance, before[str(instance.pk)], reason=reason))
    _finish(stack, operation_id, outcomes)
    return "resized"


def _resize_instance(stack: Stack, driver: HypervisorDriver, host: Host, instance: Instance, old: list[int]) -> Outcome:
    outcome = Outcome(instance=instance, changes={}, refused=[])
    old_vcpus, old_memory, old_disk = old
    name = instance.domain_name
    for field, was, now in (
        ("disk_gib", old_disk, instance.disk_gib),
        ("memory_mib", old_memory, instance.memory_mib),
        ("vcpus", old_vcpus, instance.vcpus),
    ):
        if was == now:
            continue
        try:
            applied = _apply(driver, host, instance, field=field, to=now, name=name)
        except DriverError as exc:
            _give_back(instance, field=field, was=was, now=now)
            outcome.refused.append({"what": field, "reason": exc.message})
            continue
        outcome.changes[field] = {"from": was, "to": now, "applied": applied}
    if outcome.restart_needed:
        Instance.objects.filter(pk=instance.pk).update(restart_needed=True)
    stack_event(stack, f"resize: {instance.name}: {_describe(outcome)}", actor=stack_jobs.asker(stack))
    return outcome


def _apply(driver: HypervisorDriver, host: Host, instance: Instance, *, field: str, to: int, name: str) -> str:
    """Change one field of the domain; where it applied (``LIVE`` or ``AT_RESTART``)."""
    size = driver.domain_size(name=name)
    if field == "disk_gib":
        try:
            driver.grow_disk(
                name=name, device=ROOT_DISK, pool=host.storage_pool, volume=instance.volume_name, size_bytes=to * GIB
            )
        except Unsupported:
            raise Unsupported("the host cannot grow disks") from None
        return LIVE if size.running else AT_RESTART
    if field == "memory_mib":
        live = size.running and to <= size.max_memory_mib
        reached = driver.set_memory(name=name, memory_mib=to, live=live, wait_seconds=BALLOON_WAIT_SECONDS)
        return LIVE if reached else AT_RESTART
    maximum = max(to, live_vcpu_room(instance=instance, host=host))
    if size.running and to <= size.max_vcpus:
        try:
            driver.set_vcpus(name=name, vcpus=to, maximum=maximum, live=True)
            return LIVE
        except (Unsupported, InvalidRequest) as exc:
            if exc.retryable:
                raise
    driver.set_vcpus(name=name, vcpus=to, maximum=maximum, live=False)
    return AT_RESTART


def _give_back(instance: Instance, *, field: str, was: int, now: int) -> None:
    """A change the host refused: the instance keeps its old size, its host's counter moves back."""
    hosts = Host.objects.filter(pk=instance.host_id or 0)
    with transaction.atomic():
        hosts.select_for_update().first()  # as every writer of the counters: under the host's row lock
        Instance.objects.filter(pk=instance.pk).update(**{field: was})
        hosts.update(**{FIELDS[field]: F(FIELDS[field]) - (now - was)})
    setattr(instance, field, was)


def _refuse_all(instance: Instance, old: list[int], *, reason: str) -> Outcome:
    outcome = Outcome(instance=instance, changes={}, refused=[])
    for field, was in zip(("vcpus", "memory_mib", "disk_gib"), old, strict=True):
        now = getattr(instance, field)
        if was != now:
            _give_back(instance, field=field, was=was, now=now)
            outcome.refused.append({"what": field, "reason": reason})
    return outcome


def _describe(outcome: Outcome) -> str:
    words = {"vcpus": "{} vCPUs", "memory_mib": "{} MiB of memory", "disk_gib": "a {} GiB disk"}
    parts = [
        f"{words[field].format(change['to'])} {'now' if change['applied'] == LIVE else 'at its next start'}"
        for field, change in outcome.changes.items()
    ]
    parts += [f"{UNITS[item['what']]} not changed: {item['reason']}" for item in outcome.refused]
    return "; ".join(parts) or "nothing to change"


def _finish(stack: Stack, operation_id: int, outcomes: list[Outcome]) -> None:
    changed = [o for o in outcomes if o.changes]
    refused = [o for o in outcomes if o.refused]
    later = any(o.later for o in outcomes)
    result = {
        "applied": AT_RESTART if later else LIVE,
        "instances": [
            {"instance": o.instance.name, "id": o.instance.pk, **o.changes, "not_done": o.refused} for o in outcomes
        ],
        "restart_needed": [o.instance.name for o in outcomes if o.restart_needed],
    }
    if refused:
        status = Operation.State.PARTIAL if changed else Operation.State.FAILED
        detail = "; ".join(f"{o.instance.name}: {_describe(o)}" for o in refused)
    else:
        status = Operation.State.SUCCEEDED
        detail = "done: " + ("some changes apply at the next restart" if later else "every change applied live")
    operation_finished(operation_id, status=status, detail=detail, result=result)
    before = Stack.objects.filter(pk=stack.pk).values_list("status_before", flat=True).first() or Status.RUNNING
    stack_jobs.settle(
        stack, busy=RESIZE.busy, status=Status(before), message=f"resize: {detail}", is_error=bool(refused)
    )


def boots_from_definition(driver: HypervisorDriver, instance: Instance) -> bool:
    """Whether starting ``instance`` now boots its domain from its definition: it is off and holds no
    saved memory to resume. Then every size a resize left for its restart arrives with this start."""
    name = instance.domain_name
    return driver.domain_info(name=name).state == "shutoff" and not driver.has_saved_memory(name=name)

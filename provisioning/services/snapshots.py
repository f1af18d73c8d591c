"""Snapshots of a whole stack: every tier taken at one moment, reverted together, deleted together.

Taking one pauses every running guest of the stack, snapshots each domain's disks (and, when asked,
its memory) under one libvirt name, then resumes the guests in dependency order: the tiers'
disks agree with each other as they did at that moment. The snapshots live inside the instances'
qcow2 overlays on their host; what they add there is measured (the volumes' allocation before and
after, and at least the guests' memory a running stack's snapshot holds) and counted against the
project's disk quota.

Reverting puts every tier back. A snapshot with memory resumes the guests where they were; one
without boots them from the disks as they were (as after a power cut at that moment: data written
with fsync, such as the demo database's records, is there).
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db import IntegrityError, transaction

from portal import audit, errors
from portal.models import Project, Role
from portal.scoping import Account, User, require_role
from portal.task_queues import Queue, enqueue
from provisioning import naming
from provisioning.drivers import DriverError, HypervisorDriver
from provisioning.models import BUSY_STATUSES, Instance, Stack, StackSnapshot, Status
from provisioning.name_rules import SNAPSHOT_NAME
from provisioning.quotas import check_more_quota
from provisioning.services import stack_jobs
from provisioning.services.endpoint_probe import forget_readiness, queue_endpoints_watch
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.power import start_layers
from provisioning.services.stack_jobs import StackAction

MIB = 1024 * 1024
SETTLED_WITH_GUESTS = (Status.RUNNING, Status.STOPPED)
SNAPSHOT = StackAction("snapshot", Status.SNAPSHOTTING, SETTLED_WITH_GUESTS, "provisioning.tasks.snapshot_stack")
REVERT = StackAction("revert", Status.REVERTING, SETTLED_WITH_GUESTS, "provisioning.tasks.revert_stack")


def snapshot_create(*, user: User, stack: Stack, name: str, memory: bool = False) -> StackSnapshot:
    """Accept a snapshot of every tier; the job takes it in the background (its row says ``creating``)."""
    SNAPSHOT_NAME.check(name)
    made: list[StackSnapshot] = []

    def prepare(locked: Stack) -> tuple[int]:
        kept = StackSnapshot.objects.filter(stack=locked).exclude(status=StackSnapshot.State.FAILED)
        if kept.count() >= settings.SNAPSHOTS_PER_STACK:
            raise errors.Invalid.for_field(
                "name", f"a stack keeps at most {settings.SNAPSHOTS_PER_STACK} snapshots: delete one first"
            )
        if StackSnapshot.objects.filter(stack=locked, name=name).exists():
            raise errors.Invalid.for_field("name", f"this stack already has a snapshot called '{name}'")
        project = Project.objects.select_for_update().get(pk=locked.project_id)
        check_more_quota(project, {"disk_gib": _room_to_ask(locked, memory=memory)}, what="this snapshot")
        try:
            with transaction.atomic():
                snapshot = StackSnapshot.objects.create(
                    stack=locked, name=name, memory=memory, created_by=user if isinstance(user, Account) else None
                )
        except IntegrityError:
            raise errors.Invalid.for_field("name", f"this stack already has a snapshot called '{name}'") from None
        snapshot.libvirt_name = naming.snapshot_name(snapshot.pk)
        snapshot.save(update_fields=["libvirt_name"])
        made.append(snapshot)
        return (snapshot.pk,)

    stack_jobs.begin(
        user=user,
        stack=stack,
        action=SNAPSHOT,
        check=prepare,
        snapshot=name,
        memory=memory,
    )
    return made[0]


def _room_to_ask(stack: Stack, *, memory: bool) -> int:
    """GiB of disk quota a snapshot must find free before it is taken (its real size is counted after).

    A running guest's snapshot can hold its memory, so a stack's memory is the estimate; at least 1 GiB.
    """
    if not memory and stack.status == Status.STOPPED:
        return 1
    total_mib = sum(stack.instances.exclude(status=Status.DELETED).values_list("memory_mib", flat=True))
    return max(1, math.ceil(total_mib / 1024))


def _claim_snapshot_job(stack_id: int, snapshot_id: int, busy: Status) -> tuple[Stack, StackSnapshot] | None:
    """The stack (if it still waits for this job) and the snapshot the job is about."""
    stack = stack_jobs.claim_job(stack_id, busy)
    snapshot = StackSnapshot.objects.filter(pk=snapshot_id, stack_id=stack_id).first()
    return (stack, snapshot) if stack is not None and snapshot is not None else None


def snapshot_job(*, stack_id: int, snapshot_id: int) -> str:
    claimed = _claim_snapshot_job(stack_id, snapshot_id, SNAPSHOT.busy)
    if claimed is None:
        return "stack is not waiting for this job"
    stack, snapshot = claimed
    layers = stack_jobs.instance_layers(stack)
    instances = [i for layer in layers for i in layer]
    taken: list[Instance] = []
    try:
        with driver_for(stack_jobs.stack_host(stack)) as driver:
            before = _allocations(driver, instances)
            paused = _pause_running(driver, instances)
            with_memory = True
            try:
                for instance in instances:
                    info = driver.create_snapshot(
                        domain=instance.domain_name, name=snapshot.libvirt_name, memory=snapshot.memory
                    )
                    # A guest that is off has no memory to keep: the snapshot says what it holds.
                    with_memory = with_memory and info.with_memory
                    taken.append(instance)
            finally:
                _resume_in_order(driver, layers, paused)
            grown = sum(max(0, after - before[name]) for name, after in _allocations(driver, instances).items())
            # A running guest's snapshot holds its memory; the overlay may not grow by it when it reuses
            # the clusters of a deleted snapshot, but the snapshot still takes that space in it.
            size = max(grown, sum(i.memory_mib for i in paused) * MIB)
    except DriverError as exc:
        _drop_partial(stack, snapshot, taken)
        StackSnapshot.objects.filter(pk=snapshot.pk).update(
            status=StackSnapshot.State.FAILED, status_reason=exc.message
        )
        stack_jobs.give_back(stack, busy=SNAPSHOT.busy, action=f"snapshot '{snapshot.name}'", reason=exc.message)
        return "failed"
    StackSnapshot.objects.filter(pk=snapshot.pk).update(
        status=StackSnapshot.State.READY, size_bytes=size, memory=with_memory, taken_running=bool(paused)
    )
    before_status = Status(stack.status_before or Status.RUNNING)
    stack_jobs.settle(
        stack,
        busy=SNAPSHOT.busy,
        status=before_status,
        message=f"snapshot '{snapshot.name}' taken of {len(instances)} tiers ({_mib(size)} MiB)",
    )
    return "ready"


def _allocations(driver: HypervisorDriver, instances: list[Instance]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for instance in instances:
        assert instance.host is not None
        volume = driver.find_volume(pool=instance.host.storage_pool, name=instance.volume_name)
        sizes[instance.volume_name] = volume.allocation_bytes if volume is not None else 0
    return sizes


def _pause_running(driver: HypervisorDriver, instances: list[Instance]) -> list[Instance]:
    """Pause every running guest (so all tiers are taken at one moment); the ones paused."""
    running = [i for i in instances if driver.domain_info(name=i.domain_name).state == "running"]
    paused: list[Instance] = []
    try:
        for instance in running:
            driver.pause_domain(name=instance.domain_name)
            paused.append(instance)
    except DriverError:
        for instance in paused:
            driver.resume_domain(name=instance.domain_name)
        raise
    return paused


def _resume_in_order(driver: HypervisorDriver, layers: list[list[Instance]], paused: list[Instance]) -> None:
    wanted = {i.pk for i in paused}
    for layer in layers:
        for instance in layer:
            if instance.pk in wanted:
                driver.resume_domain(name=instance.domain_name)


def _drop_partial(stack: Stack, snapshot: StackSnapshot, taken: list[Instance]) -> None:
    """A snapshot that failed half-way is removed from the tiers that got it: none is left half-taken."""
    if not taken:
        return
    try:
        with driver_for(stack_jobs.stack_host(stack)) as driver:
            for instance in taken:
                driver.delete_snapshot(domain=instance.domain_name, name=snapshot.libvirt_name)
    except DriverError as exc:
        stack_event(
            stack, f"snapshot '{snapshot.name}': could not remove its partial copies: {exc.message}", is_error=True
        )


def snapshot_revert(*, user: User, stack: Stack, snapshot: StackSnapshot) -> Stack:
    """Accept a revert of every tier to ``snapshot``; the job runs in the background."""

    def ready(locked: Stack) -> None:
        if not StackSnapshot.objects.filter(pk=snapshot.pk, stack=locked, status=StackSnapshot.State.READY).exists():
            raise errors.WrongState(f"snapshot '{snapshot.name}' is not ready")

    return stack_jobs.begin(
        user=user, stack=stack, action=REVERT, job_args=(snapshot.pk,), check=ready, snapshot=snapshot.name
    )


def revert_job(*, stack_id: int, snapshot_id: int) -> str:
    claimed = _claim_snapshot_job(stack_id, snapshot_id, REVERT.busy)
    if claimed is None:
        return "stack is not waiting for this job"
    stack, snapshot = claimed
    layers = stack_jobs.instance_layers(stack)
    instances = [i for layer in layers for i in layer]
    try:
        with driver_for(stack_jobs.stack_host(stack)) as driver:
            _pause_running(driver, instances)  # nothing a tier writes meanwhile reaches the others
            for instance in instances:
                driver.revert_snapshot(domain=instance.domain_name, name=snapshot.libvirt_name)
            forget_readiness(instance_ids=[i.pk for i in instances])  # the guests are what they were then
            if snapshot.memory:
                _resume_in_order(driver, layers, instances)
                for instance in instances:
                    info = driver.domain_info(name=instance.domain_name)
                    Instance.objects.filter(pk=instance.pk).update(status=Status.RUNNING, vnc_port=info.vnc_port)
                queue_endpoints_watch(stack_id=stack.pk)
            elif snapshot.taken_running:
                start_layers(stack, driver, layers)  # as after a power cut at that moment
            else:
                Instance.objects.filter(pk__in=[i.pk for i in instances]).update(status=Status.STOPPED)
    except DriverError as exc:
        stack_jobs.give_back(stack, busy=REVERT.busy, action=f"revert to '{snapshot.name}'", reason=exc.message)
        return "failed"
    stack_jobs.settle(stack, busy=REVERT.busy, status=Status.RUNNING, message=f"reverted to snapshot '{snapshot.name}'")
    return "running"


def snapshot_delete(*, user: User, stack: Stack, snapshot: StackSnapshot) -> StackSnapshot:
    """Mark the snapshot for deletion and queue the removal from every tier."""
    require_role(user, stack.project, Role.MEMBER)
    with transaction.atomic():
        locked = Stack.objects.select_for_update().get(pk=stack.pk)
        if locked.status in BUSY_STATUSES or locked.status in (Status.DELETING, Status.DELETED):
            raise errors.WrongState(f"the stack is {locked.status}: wait until that is done")
        row = StackSnapshot.objects.select_for_update().get(pk=snapshot.pk, stack=locked)
        if row.status == StackSnapshot.State.DELETING:
            return row
        if row.status == StackSnapshot.State.CREATING:
            raise errors.WrongState(f"snapshot '{row.name}' is still being taken")
        row.status = StackSnapshot.State.DELETING
        row.save(update_fields=["status"])
        stack_event(locked, f"snapshot '{row.name}': deleting", actor=user)
        audit.record(
            actor=user, action="stack.snapshot_delete", target=locked, project=locked.project, snapshot=row.name
        )
        transaction.on_commit(
            lambda: enqueue(
                "provisioning.tasks.delete_snapshot", row.pk, queue=Queue.BUILDS, task_name=f"delete-snapshot-{row.pk}"
            )
        )
    return row


def snapshot_delete_job(*, snapshot_id: int) -> str:
    snapshot = StackSnapshot.objects.select_related("stack").filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.status != StackSnapshot.State.DELETING:
        return "snapshot is not waiting for this job"
    stack = snapshot.stack
    instances = [i for layer in stack_jobs.instance_layers(stack) for i in layer]
    try:
        if instances:
            with driver_for(stack_jobs.stack_host(stack)) as driver:
                for instance in instances:
                    driver.delete_snapshot(domain=instance.domain_name, name=snapshot.libvirt_name)
    except DriverError as exc:
        StackSnapshot.objects.filter(pk=snapshot.pk).update(status=StackSnapshot.State.READY, status_reason=exc.message)
        stack_event(stack, f"snapshot '{snapshot.name}': delete failed: {exc.message}", is_error=True)
        return "failed"
    snapshot.delete()
    stack_event(stack, f"snapshot '{snapshot.name}': deleted")
    return "deleted"


def _mib(size: int) -> int:
    return math.ceil(size / MIB)

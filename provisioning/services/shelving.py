"""Shelve and unshelve a stack: set it aside with its disks, give its vCPUs and memory back, bring it back.

Shelving stops the guests in reverse dependency order. With ``memory`` (the default) each guest's
memory is saved on its host first (libvirt's managed save), so unshelving resumes the guests where
they were instead of booting them; a host that cannot save memory shuts its guests down instead.
The domains, disks, network and published ports stay on the host; the instances leave
``COMPUTE_STATUSES``, so the project's quota and the host's capacity no longer count their vCPUs
and memory. The lease becomes the storage lease (the project's ``storage_lease_seconds`` from the
moment of shelving), at whose end the stack is deleted.

Unshelving claims the vCPUs and memory again (quota, then room on the stack's host, under the
project's and the host's row locks, as a launch claims) and starts the guests in dependency order
with a new run lease, never past the stack's longest life.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from catalog.images import ImageError
from portal import errors
from portal.models import Project
from portal.scoping import User
from provisioning import allocations
from provisioning.drivers import DriverError, HypervisorDriver, Unsupported
from provisioning.lease_policy import latest_end
from provisioning.models import Instance, Stack, Status
from provisioning.quotas import check_more_quota
from provisioning.services import stack_jobs, stack_move
from provisioning.services.endpoint_probe import forget_readiness
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.power import start_layers, stop_layers
from provisioning.services.stack_jobs import StackAction
from provisioning.signals import tell

logger = logging.getLogger(__name__)

# A stack whose longest life ends sooner than this is not unshelved: it would be shelved again at once.
SHORTEST_RUN = timedelta(minutes=1)

SHELVE = StackAction("shelve", Status.SHELVING, (Status.RUNNING, Status.STOPPED), "provisioning.tasks.shelve_stack")
UNSHELVE = StackAction("unshelve", Status.UNSHELVING, (Status.SHELVED,), "provisioning.tasks.unshelve_stack")


def stack_shelve(*, user: User | None, stack: Stack, memory: bool = True, reason: str = "") -> Stack:
    """Accept shelving; ``user`` None when the portal shelves on its own (a run lease that ended)."""
    return stack_jobs.begin(
        user=user, stack=stack, action=SHELVE, job_args=(memory, reason), memory=memory, reason=reason or None
    )


def shelve_job(*, stack_id: int, memory: bool = True, reason: str = "") -> str:
    stack = stack_jobs.claim_job(stack_id, SHELVE.busy)
    if stack is None:
        return "stack is not waiting for this job"
    layers = stack_jobs.instance_layers(stack)
    try:
        with driver_for(stack_jobs.stack_host(stack)) as driver:
            kept_memory = _put_away(stack, driver, list(reversed(layers)), memory=memory)
    except DriverError as exc:
        stack_jobs.give_back(stack, busy=SHELVE.busy, action="shelve", reason=exc.message)
        return "failed"
    now = timezone.now()
    storage_end = now + timedelta(seconds=stack.project.storage_lease_seconds)

    how = "with its memory saved" if kept_memory else "with its guests shut down"

    def release_and_tell(locked: Stack) -> None:
        _onto_the_shelf(locked)
        locked.expires_at = storage_end
        tell(locked, "stack.shelved", moment=storage_end)

    stack_jobs.settle(
        stack,
        busy=SHELVE.busy,
        status=Status.SHELVED,
        message=f"shelved {how}{': ' + reason if reason else ''}; kept until",
        moment=storage_end,
        fields={"shelved_at": now, "shelved_with_memory": kept_memory, "expires_at": storage_end},
        before_save=release_and_tell,
    )
    return "shelved"


def _put_away(stack: Stack, driver: HypervisorDriver, layers: list[list[Instance]], *, memory: bool) -> bool:
    """Stop every guest, saving its memory when asked and the host can; True if every memory was kept."""
    if not memory:
        stop_layers(stack, driver, layers, force=False)
        return False
    kept, actor = True, stack_jobs.asker(stack)
    for layer in layers:
        for instance in layer:
            state = driver.domain_info(name=instance.domain_name).state
            if state == "shutoff":
                kept = False  # a stopped guest has no memory to keep; it will boot
                continue
            try:
                driver.save_domain_memory(name=instance.domain_name)
                stack_event(stack, f"{instance.name}: memory saved on {instance.host}", actor=actor)
            except Unsupported as exc:
                stack_event(stack, f"{instance.name}: {exc.message}; shutting it down instead", actor=actor)
                stop_layers(stack, driver, [[instance]], force=False)
                kept = False
    return kept


def stack_unshelve(*, user: User | None, stack: Stack) -> Stack:
    """Accept unshelving: claim the stack's vCPUs and memory again (quota and host room) and queue the start.

    ``user`` is None when the portal unshelves on its own (a schedule).
    """
    return stack_jobs.begin(user=user, stack=stack, action=UNSHELVE, check=_claim_compute)


def _claim_compute(stack: Stack) -> tuple[object, ...] | None:
    """Under the stack's lock: the project's quota, then room on its host, or else on another host
    (``stack_move``: the job then moves the stack); the instances count again."""
    if latest_end(stack) - timezone.now() < SHORTEST_RUN:
        raise errors.WrongState(
            f"this stack has reached the longest life project '{stack.project.name}' allows; "
            "it stays shelved until its storage lease ends"
        )
    live = Instance.objects.filter(stack=stack, status=Status.SHELVED)
    needed = live.aggregate(vcpus=Sum("vcpus"), memory_mib=Sum("memory_mib"))
    vcpus, memory_mib = needed["vcpus"] or 0, needed["memory_mib"] or 0
    project = Project.objects.select_for_update().get(pk=stack.project_id)
    check_more_quota(project, {"vcpus": vcpus, "memory_mib": memory_mib}, what="unshelving it")
    host = stack_jobs.stack_host(stack)
    if allocations.claim_compute(host=host, vcpus=vcpus, memory_mib=memory_mib):
        live.update(status=Status.UNSHELVING)
        return None
    return stack_move.claim_elsewhere(stack, full_host=host).as_args()


def unshelve_job(
    *, stack_id: int, from_host: int | None = None, cidr: str = "", ports: list[list[int]] | None = None
) -> str:
    stack = stack_jobs.claim_job(stack_id, UNSHELVE.busy)
    if stack is None:
        return "stack is not waiting for this job"
    layers = stack_jobs.instance_layers(stack)
    if from_host is not None:
        origin = stack_move.Origin.from_args(from_host, cidr, ports or [])
        try:
            stack_move.move_stack(stack, origin, layers)
        except (DriverError, ImageError) as exc:
            stack_move.put_back(stack, origin)
            # qemu-img's words may name files of this machine: people read the portal's own.
            said = exc.message if isinstance(exc, DriverError) else "a disk could not be prepared for the new host"
            logger.warning("stack %s: move to another host failed: %s", stack.pk, exc)
            stack_jobs.settle(
                stack,
                busy=UNSHELVE.busy,
                status=Status.SHELVED,
                message=f"unshelve failed: the move to another host failed: {said}",
                is_error=True,
            )
            return "failed"
    else:
        try:
            with driver_for(stack_jobs.stack_host(stack)) as driver:
                start_layers(stack, driver, layers)
        except DriverError as exc:
            _back_on_the_shelf(stack, reason=exc.message)
            return "failed"
    now = timezone.now()
    run_end = min(now + timedelta(seconds=stack.project.run_lease_seconds), latest_end(stack))
    stack_jobs.settle(
        stack,
        busy=UNSHELVE.busy,
        status=Status.RUNNING,
        message="unshelved; lease ends",
        moment=run_end,
        fields={"shelved_at": None, "shelved_with_memory": False, "expires_at": run_end, "running_at": now},
    )
    return "running"


def _back_on_the_shelf(stack: Stack, *, reason: str) -> None:
    """An unshelve that failed: stop what started, give the claim back, and stay shelved."""
    try:
        with driver_for(stack_jobs.stack_host(stack)) as driver:
            stop_layers(stack, driver, list(reversed(stack_jobs.instance_layers(stack))), force=True)
    except DriverError:
        pass  # the guests stay as they are; the shelved status still holds their disks

    stack_jobs.settle(
        stack,
        busy=UNSHELVE.busy,
        status=Status.SHELVED,
        message=f"unshelve failed: {reason}",
        is_error=True,
        before_save=_onto_the_shelf,
    )


def _onto_the_shelf(locked: Stack) -> None:
    """Under the stack's lock: its instances give back their vCPUs and memory and become shelved."""
    live = Instance.objects.filter(stack=locked).exclude(status=Status.DELETED)
    allocations.release_compute(live)  # before the status change: only computing instances give back
    live.update(status=Status.SHELVED)
    forget_readiness(instance_ids=live.values_list("pk", flat=True))

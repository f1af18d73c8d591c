"""Emptying a host: every running stack on it is moved live to another host, one after another.

An evacuation is asked for a host that is already draining (drain it first: no stack may land on it
while it empties). It is an ``Operation`` row (kind ``evacuate_host``, operators only) whose job
moves each stack through the migration service (``begin_stack_migration`` without its own job, then
``run_stack_migration`` in this one), writing its progress as it goes. A stack that cannot move
(stopped, shelved, in error, busy with another job, no room on any other host, a move that failed
and left it running where it was) is listed in the outcome with its reason; the others are listed
with the host they went to. The outcome is ``succeeded`` when nothing was left, ``failed`` when running
stacks were to move and none did, ``partial`` otherwise (some did not move, or stopped ones stay).

Only one evacuation of a host runs at a time: asking again while one is pending or running is
refused. An evacuation may be the first step of maintenance (``services.maintenance``): its request
says so, and the job hands over to maintenance once the host has no running stack left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import audit, errors
from portal.scoping import Account, User, is_operator
from portal.task_queues import Queue, enqueue
from provisioning.models import BUSY_STATUSES, Host, Instance, Operation, Stack, Status
from provisioning.services import migration
from provisioning.services.operations import (
    open_operation,
    operation_finished,
    operation_progress,
    operation_running,
)

logger = logging.getLogger(__name__)

EVACUATION_TASK = "provisioning.evacuation_tasks.evacuate_host"

# Why a stack that is not running stays where it is, by its status.
NOT_RUNNING = {
    Status.STOPPED: "it is stopped: only running stacks move live; it starts here once the host is back",
    Status.SHELVED: "it is shelved: its disks stay here; unshelving may place it elsewhere",
    Status.ERROR: "it is in error: repair or delete it",
    Status.PENDING: "it is waiting to be built",
    Status.BUILDING: "it is being built",
    Status.DELETING: "it is being deleted",
}


def require_operator(user: User) -> None:
    if not is_operator(user):
        raise errors.PermissionDenied("only operators may evacuate hosts or put them in maintenance")


def evacuation_under_way(host: Host) -> Operation | None:
    """The host's evacuation that is pending or running, if any.

    One asked longer ago than any task may run lost its worker (the cluster killed it at its timeout,
    or the worker died): it is ended as failed here, or it would refuse every later evacuation.
    """
    unfinished = Operation.objects.filter(kind=Operation.Kind.EVACUATE_HOST, host=host).exclude(
        status__in=Operation.FINAL_STATES
    )
    gone_before = timezone.now() - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS)
    for lost in unfinished.filter(created_at__lt=gone_before):
        operation_finished(
            lost.pk, status=Operation.State.FAILED, detail="the worker evacuating the host stopped; evacuate again"
        )
    return unfinished.filter(created_at__gte=gone_before).first()


def begin_evacuation(*, user: User, host: Host, maintenance: bool = False) -> Operation:
    """Accept the evacuation of a draining ``host`` and queue its job; the operation row says how it goes.

    Refused (``WrongState``) when the host is not draining, is in maintenance already, or is being
    evacuated. ``maintenance`` puts the host in maintenance once it has no running stack left.
    """
    require_operator(user)
    with transaction.atomic():
        # The host's row lock: two evacuations asked at once are one accepted, one refused.
        locked = Host.objects.select_for_update().get(pk=host.pk)
        if not locked.draining:
            raise errors.WrongState(f"{locked.name} is not draining: drain it first, so no new stack lands on it")
        if locked.maintenance:
            raise errors.WrongState(f"{locked.name} is in maintenance already: it runs no stack")
        running = evacuation_under_way(locked)
        if running is not None:
            raise errors.WrongState(f"{locked.name} is being evacuated already (operation {running.pk})")
        operation = open_operation(
            kind=Operation.Kind.EVACUATE_HOST,
            user=user,
            host=locked,
            request={"maintenance": maintenance},
            detail="waiting for a worker",
        )
        audit.record(actor=user, action="host.evacuate", target=locked, operation=operation.pk, maintenance=maintenance)
        transaction.on_commit(
            lambda: enqueue(
                EVACUATION_TASK, operation.pk, queue=Queue.BUILDS, task_name=f"evacuate-host-{locked.pk}-{operation.pk}"
            )
        )
    return operation


@dataclass
class Outcome:
    """What an evacuation did, as ``Operation.result`` keeps it."""

    moved: list[dict[str, Any]] = field(default_factory=list)
    left: list[dict[str, Any]] = field(default_factory=list)

    def leave(self, stack: Stack, reason: str) -> None:
        self.left.append({"stack": stack.pk, "name": stack.name, "status": stack.status, "reason": reason})

    def as_result(self) -> dict[str, Any]:
        return {"moved": self.moved, "left": self.left}

    @property
    def running_left(self) -> list[dict[str, Any]]:
        """Stacks still running on the host (a failed move, no room, busy): what keeps it from maintenance."""
        return [item for item in self.left if item["status"] not in NOT_RUNNING]


def stacks_on(host: Host) -> list[Stack]:
    """The stacks that live on ``host`` (each lives on one host), oldest first."""
    ids = Instance.objects.filter(host=host).exclude(status=Status.DELETED).values("stack_id")
    stacks = Stack.objects.filter(pk__in=ids).exclude(status=Status.DELETED).select_related("project")
    return list(stacks.order_by("created_at", "pk"))


# What runs after an evacuation asked with ``maintenance``: given the host, the outcome and the detail so
# far, it returns the detail to keep (``services.maintenance.after_evacuation``).
AfterEvacuation = Callable[..., str]


def run_evacuation(*, operation_id: int, then: AfterEvacuation | None = None) -> Operation.State | None:
    """The job: move each running stack off the host in turn; returns the final state (None for a stale job).

    ``then`` is called when the evacuation was asked as the first step of maintenance.
    """
    operation = Operation.objects.select_related("host", "created_by").filter(pk=operation_id).first()
    if operation is None or operation.status != Operation.State.PENDING or operation.host is None:
        return None  # a duplicate job, or one whose host was deleted meanwhile
    host = operation.host
    operation_running(operation.pk, detail=f"listing the stacks on {host.name}")
    outcome = Outcome()
    try:
        _move_all(operation, host, outcome)
    except Exception:
        # Whatever broke, the row must not stay "running" for ever: a new evacuation is refused until it ends.
        logger.exception("evacuation %s of host %s stopped", operation.pk, host.name)
        state, detail = Operation.State.FAILED, "the evacuation stopped on an unexpected error (see the portal's log)"
        operation_finished(operation.pk, status=state, detail=detail, result=outcome.as_result())
        return state
    state, detail = _verdict(host, outcome)
    if operation.request.get("maintenance") and then is not None:
        detail = then(host=host, outcome=outcome, detail=detail, user=operation.created_by)
    operation_finished(operation.pk, status=state, detail=detail, result=outcome.as_result())
    return state


def _move_all(operation: Operation, host: Host, outcome: Outcome) -> None:
    stacks = stacks_on(host)
    # The cluster kills a task at its timeout: no new move starts once half of it is spent, so the one
    # under way can end and the outcome be written. What was not tried is listed; evacuating again goes on.
    stop_at = time.monotonic() + settings.TASK_TIMEOUT_SECONDS / 2
    for index, stack in enumerate(stacks):
        if time.monotonic() > stop_at:
            for rest in stacks[index:]:
                outcome.leave(rest, "not tried: the evacuation ran out of time; evacuate the host again")
            return
        operation_progress(
            operation.pk,
            percent=100 * index // len(stacks),
            detail=f"moving {stack.name} ({index + 1} of {len(stacks)})",
        )
        _move_one(operation.created_by, stack, outcome)
        operation_progress(operation.pk, percent=100 * (index + 1) // len(stacks))


def _move_one(user: Account | None, stack: Stack, outcome: Outcome) -> None:
    stack.refresh_from_db()
    if stack.status in NOT_RUNNING:
        outcome.leave(stack, NOT_RUNNING[Status(stack.status)])
        return
    if stack.status in BUSY_STATUSES:
        outcome.leave(stack, f"it is {stack.get_status_display().lower()}: another job owns it; it stays here")
        return
    if user is None:
        outcome.leave(stack, "the operator who asked for the evacuation no longer exists")
        return
    try:
        move = migration.begin_stack_migration(user=user, stack=stack, target=None, queue=False)
    except errors.PortalError as exc:
        # Busy with another job, no room on any other host, ...: it keeps running here.
        outcome.leave(stack, exc.detail)
        return
    moved = migration.run_stack_migration(stack_id=stack.pk, operation_id=move.pk)
    move.refresh_from_db()
    if moved:
        target = move.target_host.name if move.target_host is not None else ""
        outcome.moved.append({"stack": stack.pk, "name": stack.name, "to": target, "operation": move.pk})
    else:
        reason = move.detail or "the move failed"
        outcome.leave(stack, f"{reason}; it runs here still")


def _verdict(host: Host, outcome: Outcome) -> tuple[Operation.State, str]:
    """Succeeded: nothing left. Failed: running stacks were to move and none did. Else partial."""
    moved, left, stuck = len(outcome.moved), len(outcome.left), len(outcome.running_left)
    if not left:
        if not moved:
            return Operation.State.SUCCEEDED, f"{host.name} ran no stack: nothing to move"
        return Operation.State.SUCCEEDED, f"moved {_stacks(moved)} off {host.name}"
    if stuck and not moved:
        return Operation.State.FAILED, f"none of the {_stacks(stuck)} running on {host.name} could move"
    idle = left - stuck
    parts = [f"moved {_stacks(moved)} off {host.name}"]
    if stuck:
        parts.append(f"{_stacks(stuck)} still running there could not move")
    if idle:
        parts.append(f"{_stacks(idle)} not running stay{'s' if idle == 1 else ''} there")
    return Operation.State.PARTIAL, "; ".join(parts)


def _stacks(count: int) -> str:
    return f"{count} stack{'' if count == 1 else 's'}"


__all__ = ["begin_evacuation", "evacuation_under_way", "require_operator", "run_evacuation", "stacks_on"]

"""Finishing what a dead worker left: no stack stays "pending", "building" or busy with a job for ever.

A build task that the cluster killed at its timeout (or whose worker process died) leaves its
stack "building" with VMs that may half exist; a build task lost with its broker leaves the stack
"pending". The watchdog fails the first (removing what the build made, with a reason people can
read) and queues the second again; the build's own PENDING -> BUILDING step makes sure only one
build ever runs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from portal.moments import duration_text
from portal.task_queues import Queue, enqueue
from provisioning.drivers import DriverError
from provisioning.models import BUSY_STATUSES, Instance, Stack, StackSnapshot, Status
from provisioning.services.cleanup import remove_stack_resources
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.stack_jobs import stack_host

logger = logging.getLogger(__name__)


def _stalled_after() -> timedelta:
    # Longer than any build may run: the cluster kills a task at its timeout.
    return timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS)


def stacks_watchdog(*, now: datetime | None = None) -> int:
    """Fail builds that stopped making progress and re-queue builds that never started; return how many."""
    now = now or timezone.now()
    cutoff = now - _stalled_after()
    handled = 0
    stalled = Stack.objects.filter(status=Status.BUILDING).annotate(last_event=Max("events__created_at"))
    for stack in stalled.filter(last_event__lt=cutoff):
        _fail_stalled_build(stack, minutes=int(_stalled_after().total_seconds() // 60))
        handled += 1
    busy = Stack.objects.filter(status__in=BUSY_STATUSES).annotate(last_event=Max("events__created_at"))
    for stack in busy.filter(last_event__lt=cutoff):
        handled += _settle_stalled_job(stack)
    forgotten = Stack.objects.filter(status=Status.PENDING, updated_at__lt=cutoff)
    for stack_id in list(forgotten.values_list("pk", flat=True)):
        # Touching updated_at spaces the retries out, one per watchdog period at most.
        Stack.objects.filter(pk=stack_id, status=Status.PENDING).update(updated_at=now)
        stack_event(Stack(pk=stack_id), "the build never started; queued again")
        enqueue(
            "provisioning.tasks.build_stack", stack_id, queue=Queue.BUILDS, task_name=f"build-stack-{stack_id}-again"
        )
        handled += 1
    return handled


def _fail_stalled_build(stack: Stack, *, minutes: int) -> None:
    reason = f"the worker building this stack stopped (no progress for {duration_text(minutes * 60)})"
    logger.warning("stack %s: %s", stack.pk, reason)
    instances = list(stack.instances.select_related("host", "stack"))
    problems = remove_stack_resources(stack, instances)
    if problems:
        reason = f"{reason}; cleanup incomplete: {'; '.join(problems)}"
    marked = Stack.objects.filter(pk=stack.pk, status=Status.BUILDING).update(status=Status.ERROR, status_reason=reason)
    if marked:
        Instance.objects.filter(stack=stack).exclude(status=Status.DELETED).update(
            status=Status.ERROR, status_reason=reason[:1000]
        )
        stack_event(stack, f"failed: {reason}", is_error=True)


def _settle_stalled_job(stack: Stack) -> int:
    """A power, shelve, snapshot or revert job whose worker died: settle the stack as its guests now are.

    Paused guests (a snapshot cut short) are resumed; each instance becomes running or stopped by
    its domain's state, and the stack running if any tier runs. Instances keep their vCPUs and
    memory throughout a job (only a finished shelve gives them back), so no claim changes here.
    A host that does not answer leaves the stack for the next round.
    """
    if stack.status == Status.SNAPSHOTTING and stack.status_before == Status.SHELVED:
        # A copy of a shelved stack's disks (an export, a capture) started no guest: it is shelved
        # still, and its instances hold no vCPUs or memory, as before the job.
        marked = Stack.objects.filter(pk=stack.pk, status=stack.status).update(status=Status.SHELVED, status_before="")
        if marked:
            stack_event(stack, "the worker copying the stack's disks stopped; the stack is shelved", is_error=True)
        return marked
    instances = list(stack.instances.exclude(status=Status.DELETED).exclude(host=None))
    states: dict[int, str] = {}
    try:
        if instances:
            with driver_for(stack_host(stack)) as driver:
                for instance in instances:
                    state = driver.domain_info(name=instance.domain_name).state
                    if state == "paused":
                        driver.resume_domain(name=instance.domain_name)
                        state = "running"
                    states[instance.pk] = state
    except DriverError as exc:
        # A host in maintenance may not answer for a while: expected, the stack waits for it quietly.
        level = logging.INFO if _in_maintenance(stack) else logging.WARNING
        logger.log(level, "stack %s: stalled %s job not settled yet: %s", stack.pk, stack.status, exc.message)
        return 0
    running = [pk for pk, state in states.items() if state == "running"]
    Instance.objects.filter(pk__in=running).update(status=Status.RUNNING)
    Instance.objects.filter(pk__in=[pk for pk in states if pk not in running]).update(status=Status.STOPPED)
    StackSnapshot.objects.filter(stack=stack, status=StackSnapshot.State.CREATING).update(
        status=StackSnapshot.State.FAILED, status_reason="the worker taking it stopped"
    )
    settled = Status.RUNNING if running else Status.STOPPED
    marked = Stack.objects.filter(pk=stack.pk, status=stack.status).update(status=settled, status_before="")
    if marked:
        stack_event(stack, f"the worker doing '{stack.status}' stopped; the stack is {settled}", is_error=True)
    return marked


def _in_maintenance(stack: Stack) -> bool:
    return Instance.objects.filter(stack=stack, host__maintenance=True).exclude(status=Status.DELETED).exists()

"""Finishing what a dead worker left: no stack stays "pending" or "building" for ever.

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

from portal.task_queues import Queue, enqueue
from provisioning.models import Instance, Stack, Status
from provisioning.services.cleanup import remove_stack_resources
from provisioning.services.events import stack_event

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
    reason = f"the worker building this stack stopped (no progress for {minutes} minutes)"
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

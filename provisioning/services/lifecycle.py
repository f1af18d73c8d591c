"""A stack after launch: renew or extend its lease, destroy it (data and all), act on leases that ran out."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal import audit, errors
from portal.models import Role, RunEnd
from portal.moments import duration_text, moment_text
from portal.scoping import User, require_role
from portal.task_queues import Queue, enqueue
from provisioning import allocations
from provisioning.lease_policy import extendable_until, latest_end
from provisioning.models import DELETABLE_STATUSES, Instance, PublishedPort, Stack, Status
from provisioning.services.cleanup import remove_stack_resources
from provisioning.services.events import stack_event
from provisioning.services.launch import check_lease
from provisioning.services.shelving import stack_shelve
from provisioning.signals import tell

STUCK_TEARDOWN_AFTER = timedelta(minutes=10)
# An extension that would add less than this is refused: it changes nothing anyone could use.
SMALLEST_EXTENSION = timedelta(minutes=1)
# Stacks whose run lease ends in the project's ``at_run_end``: the ones that have guests to keep.
RUN_LEASE_SHELVES = (Status.RUNNING, Status.STOPPED)
# After a failed delete the lease sweep waits this long before trying again, twice as long after
# each further failure, never longer than the cap: a host that stays away is not asked (with an
# event and an audit row each time) every minute.
FAILED_TEARDOWN_FIRST_PAUSE = timedelta(minutes=2)
FAILED_TEARDOWN_MAX_PAUSE = timedelta(hours=1)


def stack_extend(*, user: User, stack: Stack) -> Stack:
    """Extend the lease as far as the policy allows from now (the one-click extension of a warning)."""
    require_role(user, stack.project, Role.MEMBER)
    with transaction.atomic():
        locked = Stack.objects.select_for_update().select_related("project").get(pk=stack.pk)
        _check_lease_changes(locked)
        wanted = extendable_until(locked)
        if wanted - locked.expires_at < SMALLEST_EXTENSION:
            raise errors.Invalid.for_field(
                "lease",
                f"this stack's lease cannot be extended: project '{locked.project.name}' lets a stack live at "
                f"most {duration_text(locked.project.max_lease_seconds)} from its creation",
            )
        return _set_lease_end(user=user, stack=locked, end=wanted, how="extend")


def stack_renew_lease(*, user: User, stack: Stack, lease_seconds: int, shorten: bool = False) -> Stack:
    """Set the stack to expire ``lease_seconds`` from now.

    The project's policy sets two limits: the longest single extension (``max_extension``), and the
    longest life counted from the stack's creation (``max_life``), so renewals cannot keep data
    alive for ever. An end earlier than the current one is set only when the caller says so
    (``shorten``), so "15 minutes" on a day-long lease never cuts it silently.
    """
    require_role(user, stack.project, Role.MEMBER)
    check_lease(lease_seconds)
    with transaction.atomic():
        locked = Stack.objects.select_for_update().select_related("project").get(pk=stack.pk)
        _check_lease_changes(locked)
        project = locked.project
        wanted = timezone.now() + timedelta(seconds=lease_seconds)
        if wanted > latest_end(locked):
            raise errors.Invalid.for_field(
                "lease",
                f"project '{project.name}' lets a stack live at most {duration_text(project.max_lease_seconds)} "
                f"from its creation: until {moment_text(latest_end(locked))}",
            )
        if lease_seconds > project.max_extension_seconds and wanted > locked.expires_at:
            raise errors.Invalid.for_field(
                "lease",
                f"project '{project.name}' extends a lease by at most {duration_text(project.max_extension_seconds)} "
                "at a time, counted from now",
            )
        if wanted < locked.expires_at and not shorten:
            raise errors.Invalid.for_field(
                "lease",
                f"this would end the lease earlier ({moment_text(wanted)} instead of "
                f"{moment_text(locked.expires_at)}); ask to shorten it explicitly",
            )
        return _set_lease_end(user=user, stack=locked, end=wanted, how="renew", lease_seconds=lease_seconds)


def _check_lease_changes(stack: Stack) -> None:
    if stack.status not in DELETABLE_STATUSES:
        raise errors.WrongState(f"stack is {stack.status}")


def _set_lease_end(*, user: User, stack: Stack, end: datetime, how: str, **audit_fields: object) -> Stack:
    """Write the new end of a locked stack's lease, with its event and audit row."""
    previous_end = stack.expires_at  # the stored end: the caller's copy may be stale
    stack.expires_at = end
    stack.save(update_fields=["expires_at", "updated_at"])
    stack_event(stack, "lease renewed until", moment=end, actor=user)
    audit.record(
        actor=user,
        action="stack.renew_lease" if how == "renew" else "stack.extend_lease",
        target=stack,
        project=stack.project,
        expires_at=end.isoformat(),
        shortened=end < previous_end,
        **audit_fields,
    )
    return stack


def stack_destroy(*, user: User | None, stack: Stack, reason: str = "") -> Stack:
    """Mark the stack for deletion and queue the teardown (domains and volumes, data and all).

    ``user`` is None when the portal itself destroys the stack (lease expiry); ``reason`` says why
    when no person asked (the event names the person who did).
    """
    if user is not None:
        require_role(user, stack.project, Role.MEMBER)
    with transaction.atomic():
        locked = Stack.objects.select_for_update().get(pk=stack.pk)
        if locked.status == Status.DELETING:
            return locked
        if locked.status not in DELETABLE_STATUSES:
            raise errors.WrongState(f"stack is {locked.status}")
        locked.status = Status.DELETING
        locked.status_reason = reason
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        stack_event(locked, f"deleting: {reason}" if reason else "deleting", actor=user)
        audit.record(actor=user, action="stack.destroy", target=locked, project=locked.project, reason=reason)
        transaction.on_commit(lambda: _queue_teardown(locked.pk))
    return locked


def _queue_teardown(stack_id: int) -> None:
    enqueue("provisioning.tasks.teardown_stack", stack_id, queue=Queue.CONTROL, task_name=f"teardown-stack-{stack_id}")


def stack_teardown(*, stack: Stack) -> Stack:
    """The worker's side of a delete: remove every instance from its host, then release what it held.

    The libvirt calls run outside any transaction; removing is idempotent, so a second teardown
    queued for the same stack (a retry) does no harm.
    """
    if not Stack.objects.filter(pk=stack.pk, status=Status.DELETING).exists():
        stack.refresh_from_db()
        return stack
    instances = list(stack.instances.select_related("host", "stack"))
    problems = remove_stack_resources(stack, instances)
    with transaction.atomic():
        locked = Stack.objects.select_for_update().get(pk=stack.pk)
        if locked.status != Status.DELETING:
            return locked
        if problems:
            reason = f"delete failed: {'; '.join(problems)}; delete again to retry"
            locked.status, locked.status_reason = Status.ERROR, reason
            locked.teardown_failures += 1
            locked.teardown_retry_at = timezone.now() + failed_teardown_pause(locked.teardown_failures)
            locked.save(
                update_fields=["status", "status_reason", "teardown_failures", "teardown_retry_at", "updated_at"]
            )
            stack_event(locked, reason, is_error=True)
            return locked
        gone = Instance.objects.filter(stack=locked)
        allocations.release(gone)  # their hosts get back the room they held, in this transaction
        gone.update(status=Status.DELETED)
        PublishedPort.objects.filter(instance__stack=locked).delete()
        locked.status, locked.deleted_at = Status.DELETED, timezone.now()
        locked.save(update_fields=["status", "deleted_at", "updated_at"])
        stack_event(locked, "deleted: domains destroyed, disks and network removed")
        tell(locked, "stack.deleted", moment=locked.deleted_at)
    return locked


def failed_teardown_pause(failures: int) -> timedelta:
    """How long the lease sweep waits before trying a delete again after ``failures`` failures in a row."""
    doublings = min(max(failures - 1, 0), 16)  # far past the cap already; keeps the number small
    return min(FAILED_TEARDOWN_FIRST_PAUSE * 2**doublings, FAILED_TEARDOWN_MAX_PAUSE)


def leases_expire(*, now: datetime | None = None) -> int:
    """Act on every stack whose lease has run out; return how many.

    A running or stopped stack whose run lease ended is shelved or deleted, as its project's policy
    says (``at_run_end``); a shelved stack whose storage lease ended is deleted; a stack that never
    ran (pending, building, failed) is deleted. A stack busy with a job is left for the next sweep.
    A stack whose delete failed is tried again once its pause is over (``failed_teardown_pause``).
    Also re-queues teardowns that have sat in "deleting" too long (a worker died or the
    database refused a write), so an expired stack can never linger with its VM running.
    """
    now = now or timezone.now()
    count = 0
    due = Q(teardown_retry_at__isnull=True) | Q(teardown_retry_at__lte=now)
    expired = Stack.objects.filter(due, expires_at__lte=now, status__in=DELETABLE_STATUSES).select_related("project")
    for stack in expired:
        try:
            with transaction.atomic():
                if stack.status in RUN_LEASE_SHELVES and stack.project.at_run_end == RunEnd.SHELVE:
                    stack_shelve(user=None, stack=stack, reason="run lease ended")
                else:
                    reason = "storage lease ended" if stack.status == Status.SHELVED else "lease expired"
                    stack_destroy(user=None, stack=stack, reason=reason)
                tell(stack, "lease.ended", moment=stack.expires_at)
            count += 1
        except errors.WrongState:
            continue
    stuck = Stack.objects.filter(status=Status.DELETING, updated_at__lte=now - STUCK_TEARDOWN_AFTER)
    for stack_id in list(stuck.values_list("pk", flat=True)):
        # Touching updated_at spaces the retries out instead of queueing one every minute.
        Stack.objects.filter(pk=stack_id).update(updated_at=now)
        stack_event(Stack(pk=stack_id), "teardown is taking too long; trying again")
        _queue_teardown(stack_id)
    return count

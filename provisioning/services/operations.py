"""The life of an ``Operation`` row: opened by the service that accepts a request, then moved along
by the job that does the work (running, progress, a final state with its detail and outcome).

Progress is written outside any transaction of the caller's (``update`` on the row), so a job that
holds no lock can report as often as it likes; a stack's watchers are nudged with it.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from portal.scoping import Account, User
from provisioning.models import Host, Instance, Operation, Stack
from provisioning.progress import announce_stack_change


def open_operation(
    *,
    kind: Operation.Kind,
    user: User | None,
    stack: Stack | None = None,
    instance: Instance | None = None,
    host: Host | None = None,
    target_host: Host | None = None,
    request: dict[str, Any] | None = None,
    detail: str = "",
) -> Operation:
    """A new pending operation; call inside the transaction that accepts the request."""
    if stack is None and instance is not None:
        stack = instance.stack
    return Operation.objects.create(
        kind=kind,
        project=stack.project if stack is not None else None,
        stack=stack,
        instance=instance,
        host=host,
        target_host=target_host,
        request=request or {},
        detail=detail[:500],
        created_by=user if isinstance(user, Account) else None,
    )


def operation_running(operation_id: int, *, detail: str = "") -> None:
    Operation.objects.filter(pk=operation_id, status=Operation.State.PENDING).update(
        status=Operation.State.RUNNING, started_at=timezone.now(), detail=detail[:500]
    )
    _nudge(operation_id)


def operation_progress(operation_id: int, *, percent: int, detail: str | None = None) -> None:
    """Where the work is, 0 to 100; a final operation is left as it ended."""
    changes: dict[str, Any] = {"progress_percent": max(0, min(100, int(percent)))}
    if detail is not None:
        changes["detail"] = detail[:500]
    Operation.objects.filter(pk=operation_id).exclude(status__in=Operation.FINAL_STATES).update(**changes)
    _nudge(operation_id)


def operation_finished(
    operation_id: int, *, status: Operation.State, detail: str, result: dict[str, Any] | None = None
) -> None:
    """The final state, its reason in the reader's words, and the outcome (what moved, what could not)."""
    if status not in Operation.FINAL_STATES:
        raise ValueError(f"{status} is not a final state")
    changes: dict[str, Any] = {"status": status, "detail": detail[:500], "finished_at": timezone.now()}
    if status == Operation.State.SUCCEEDED:
        changes["progress_percent"] = 100
    if result is not None:
        changes["result"] = result
    Operation.objects.filter(pk=operation_id).exclude(status__in=Operation.FINAL_STATES).update(**changes)
    _nudge(operation_id)


def _nudge(operation_id: int) -> None:
    stack_id = Operation.objects.filter(pk=operation_id).values_list("stack_id", flat=True).first()
    if stack_id is not None:
        announce_stack_change(stack_id)

"""What every action on a stack after launch shares: one job at a time, in a status that says so.

An action (start, shut down, shelve, snapshot, ...) is accepted in a transaction that checks the
stack's status under its row lock, moves it to a busy status (``BUSY_STATUSES``) remembering the
settled one it came from (``status_before``), records an event and an audit row, and queues the
job once the transaction commits, on the builds queue: tenants' work, which must not hold up the
portal's upkeep (a shut-down may wait a minute for its guests). The job does the libvirt work
outside any transaction and then settles the stack: in its new status, or back where it was with
the reason it failed. While a job owns the stack every other action is refused, so two never
interleave on one stack's domains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.db import transaction

from portal import audit, errors
from portal.models import Role
from portal.scoping import Account, User, require_role
from portal.task_queues import Queue, enqueue
from provisioning.drivers import DriverError
from provisioning.models import ACTIVE_STATUSES, BUSY_STATUSES, Host, Instance, Stack, StackEvent, Status
from provisioning.services.events import stack_event
from provisioning.templates import TemplateDocument

QUEUED = "queued"  # the word of the event that begins a job; its actor is who asked for the job


@dataclass(frozen=True)
class StackAction:
    """An action on a whole stack: its name (audit, events, the API), its busy status, where it may start."""

    name: str  # "shelve": audit action "stack.shelve", events "shelve: ..."
    busy: Status
    allowed_from: tuple[Status, ...]
    task: str  # the django-q2 entry point, called with the stack's id and ``job_args``

    def refusal(self, status: str) -> str:
        if status in BUSY_STATUSES:
            return f"the stack is {status}: wait until that is done"
        allowed = ", ".join(str(s) for s in self.allowed_from)
        return f"cannot {self.name} a stack that is {status} (only one that is {allowed})"


def begin(
    *,
    user: User | None,
    stack: Stack,
    action: StackAction,
    job_args: Iterable[object] = (),
    check: Callable[[Stack], tuple[object, ...] | None] | None = None,
    **audit_fields: object,
) -> Stack:
    """Accept ``action`` on ``stack``: lock it, check its status (and ``check``), mark it busy, queue the job.

    ``user`` is None when the portal acts on its own (a lease that ran out, an idle stack).
    ``check`` runs under the lock and may raise a portal error to refuse (quota, capacity...); what it
    returns is added to the job's arguments (the id of a row it made, ...).
    """
    if user is not None:
        require_role(user, stack.project, Role.MEMBER)
    with transaction.atomic():
        locked = Stack.objects.select_for_update().select_related("project").get(pk=stack.pk)
        if locked.status not in action.allowed_from:
            raise errors.WrongState(action.refusal(locked.status))
        if user is not None:
            _refuse_while_host_in_maintenance(locked, action)
        extra_args = check(locked) if check is not None else None
        locked.status_before, locked.status = locked.status, action.busy
        locked.save(update_fields=["status", "status_before", "updated_at"])
        stack_event(locked, f"{action.name}: {QUEUED}", actor=user)
        audit.record(actor=user, action=f"stack.{action.name}", target=locked, project=locked.project, **audit_fields)
        args = (*job_args, *(extra_args or ()))
        transaction.on_commit(
            lambda: enqueue(
                action.task, locked.pk, *args, queue=Queue.BUILDS, task_name=f"{action.name}-stack-{locked.pk}"
            )
        )
    return locked


def _refuse_while_host_in_maintenance(stack: Stack, action: StackAction) -> None:
    """A host in maintenance may have its libvirtd stopped: nothing a person asks for can reach it there."""
    host = Host.objects.filter(maintenance=True, instances__stack=stack, instances__status__in=ACTIVE_STATUSES).first()
    if host is not None:
        raise errors.WrongState(
            f"cannot {action.name} this stack now: its host {host.name} is in maintenance; "
            "an operator can move it to another host or end the maintenance"
        )


def asker(stack: Stack) -> Account | None:
    """Who asked for the job the stack is busy with: the actor of the event that queued it (one job at
    a time, so the latest such event is this job's)."""
    queued = StackEvent.objects.filter(stack=stack, message__endswith=f": {QUEUED}").select_related("actor")
    begun = queued.order_by("-created_at", "-id").first()
    return begun.actor if begun is not None else None


def claim_job(stack_id: int, busy: Status) -> Stack | None:
    """The job's first step: the stack, if it is still in ``busy`` (a duplicate or stale job finds it is not)."""
    return Stack.objects.select_related("project").filter(pk=stack_id, status=busy).first()


def settle(
    stack: Stack,
    *,
    busy: Status,
    status: Status,
    message: str,
    is_error: bool = False,
    moment: datetime | None = None,
    fields: dict[str, object] | None = None,
    before_save: Callable[[Stack], None] | None = None,
    actor: Account | Literal["asker"] | None = "asker",
) -> bool:
    """End a job: move the stack from ``busy`` to ``status`` with an event; False if it left ``busy`` meanwhile.

    ``before_save`` runs under the lock, in the same transaction (release what the stack held, ...).
    The event's actor is whoever asked for the job (``begin``), unless ``actor`` names one.
    """
    with transaction.atomic():
        locked = Stack.objects.select_for_update().filter(pk=stack.pk, status=busy).first()
        if locked is None:
            return False
        if before_save is not None:
            before_save(locked)
        locked.status, locked.status_before = status, ""
        for name, value in (fields or {}).items():
            setattr(locked, name, value)
        locked.save()
        stack_event(
            locked, message, is_error=is_error, moment=moment, actor=asker(locked) if actor == "asker" else actor
        )
    stack.refresh_from_db()
    return True


def give_back(stack: Stack, *, busy: Status, action: str, reason: str) -> bool:
    """End a failed job: the stack goes back to the status it came from, saying what failed."""
    before = Stack.objects.filter(pk=stack.pk).values_list("status_before", flat=True).first() or Status.ERROR
    return settle(stack, busy=busy, status=Status(before), message=f"{action} failed: {reason}", is_error=True)


def instance_layers(stack: Stack) -> list[list[Instance]]:
    """The stack's live instances in start order: each layer depends only on earlier ones."""
    instances = list(stack.instances.exclude(status=Status.DELETED).select_related("host", "stack"))
    document = TemplateDocument.from_json(stack.document)
    layers = [[i for i in instances if i.role in {tier.name for tier in layer}] for layer in document.start_order()]
    placed = {i.pk for layer in layers for i in layer}
    stray = [i for i in instances if i.pk not in placed]  # a tier renamed by hand: last, not lost
    return [layer for layer in layers if layer] + ([stray] if stray else [])


def set_instances(stack: Stack, status: Status, **fields: object) -> None:
    """Every live instance of the stack to ``status``."""
    stack.instances.exclude(status=Status.DELETED).update(status=status, **fields)


def stack_host(stack: Stack) -> Host:
    """The host a stack lives on (all its tiers and its network are there); ``DriverError`` if it has none."""
    instance = stack.instances.exclude(status=Status.DELETED).exclude(host=None).select_related("host").first()
    if instance is None or instance.host is None:
        raise DriverError("the stack has no instance on a host")
    return instance.host

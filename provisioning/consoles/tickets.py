"""Console tickets and the console sessions they open.

A ticket is what lets a websocket reach one instance's console: random (256 bits), stored only as
its SHA-256 digest, good for one socket, for at most ``TICKET_SECONDS``, bound to the user who asked
and to the instance. The socket's consumer redeems it (``console_ticket_redeem``); the row then
records the session, and ``console_session_close`` writes it to the audit log when it ends.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from portal import audit, errors
from portal.models import Role
from portal.scoping import Account, User, require_role, role_in
from provisioning.consoles.backlog import console_log_volume_name
from provisioning.models import ConsoleTicket, Instance, Status

TICKET_SECONDS = 60
# An open session refreshes ``last_seen_at`` this often; one not seen for ``STALE_AFTER`` (its
# process died) no longer counts towards the user's limit.
HEARTBEAT_SECONDS = 30
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
DEFAULT_MAX_OPEN_PER_USER = 5

# Close codes a refused or ended console socket carries (4000-4999 belong to applications).
CLOSE_BAD_TICKET = 4401  # unknown, used, expired, or presented by someone else
CLOSE_FORBIDDEN = 4403  # a foreign Origin, or a role that does not allow consoles
CLOSE_NOT_FOUND = 4404  # the instance is gone or no longer visible to the user
CLOSE_NOT_RUNNING = 4409  # the instance (or its stack) is not running
CLOSE_ENDED = 4410  # the stack was deleted or its lease ran out while the console was open
CLOSE_TOO_MANY = 4429  # the user has too many consoles open
CLOSE_UNREACHABLE = 4502  # the VM's console could not be reached or refused the proxy


def max_open_per_user() -> int:
    return int(getattr(settings, "CONSOLE_MAX_OPEN_PER_USER", DEFAULT_MAX_OPEN_PER_USER))


def ticket_digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str  # shown once, in the websocket URL; only its digest is kept
    kind: str
    expires_at: datetime


@dataclass(frozen=True)
class ConsoleGrant:
    """What an open console session may reach: everything the proxy needs, read once at redemption."""

    ticket_id: int
    kind: str
    user_id: int
    instance_id: int
    stack_id: int
    host_uri: str
    console_address: str
    domain_name: str
    vnc_port: int | None
    vnc_password: str
    stack_expires_at: datetime
    # Where the host keeps the serial console's log (``provisioning.consoles.backlog``); "" when it keeps none.
    storage_pool: str = ""
    console_log_name: str = ""


class ConsoleRefused(Exception):
    """A console socket is turned away; ``code`` is the websocket close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _open_sessions(user_id: int, now: datetime) -> int:
    return ConsoleTicket.objects.filter(
        user_id=user_id, opened_at__isnull=False, closed_at__isnull=True, last_seen_at__gte=now - STALE_AFTER
    ).count()


def _not_running_reason(instance: Instance) -> str | None:
    stack = instance.stack
    if stack.status in (Status.DELETING, Status.DELETED) or instance.status == Status.DELETED:
        return "deleted"
    if instance.status != Status.RUNNING or stack.status != Status.RUNNING:
        return f"not running (instance {instance.status}, stack {stack.status})"
    return None


def console_ticket_issue(*, user: User, instance: Instance, kind: str) -> IssuedTicket:
    """A ticket to open ``kind`` ("vnc" or "serial") on ``instance``. Members and owners only."""
    require_role(user, instance.stack.project, Role.MEMBER)
    assert isinstance(user, Account), "require_role lets no anonymous caller through"
    if kind not in ConsoleTicket.Kind.values:
        raise errors.Invalid.for_field("kind", f"kind must be one of {', '.join(ConsoleTicket.Kind.values)}")
    reason = _not_running_reason(instance)
    if reason is not None:
        raise errors.WrongState(f"instance {instance.name} is {reason}: its console cannot be opened")
    if kind == ConsoleTicket.Kind.VNC and not instance.vnc_port:
        raise errors.WrongState(f"instance {instance.name} has no VNC server")
    now = timezone.now()
    limit = max_open_per_user()
    if _open_sessions(user.pk, now) >= limit:
        raise errors.QuotaExceeded(f"you have {limit} consoles open already; close one first")
    ticket = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=TICKET_SECONDS)
    ConsoleTicket.objects.create(
        digest=ticket_digest(ticket),
        user=user,
        instance=instance,
        kind=kind,
        expires_at=expires_at,
        user_auth_hash=user.get_session_auth_hash(),
    )
    return IssuedTicket(ticket=ticket, kind=kind, expires_at=expires_at)


def console_ticket_redeem(*, ticket: str, kind: str, session_user: User, client_address: str) -> ConsoleGrant:
    """Spend ``ticket`` on a ``kind`` socket and open the session; raise ``ConsoleRefused`` otherwise.

    The ticket is spent by the first attempt whatever happens next, so it can never be tried twice.
    Everything the ticket was issued on is checked again: the user may have lost the role, the stack
    may be going away, or the user may have opened other consoles meanwhile.
    """
    now = timezone.now()
    digest = ticket_digest(ticket)
    spent = ConsoleTicket.objects.filter(digest=digest, kind=kind, used_at__isnull=True, expires_at__gt=now).update(
        used_at=now, client_address=client_address[:45]
    )
    if not spent:
        raise ConsoleRefused(CLOSE_BAD_TICKET, "unknown, used or expired ticket")
    try:
        return _open_session(digest=digest, session_user=session_user, now=now)
    except ConsoleRefused:
        # Written after the atomic block has ended: inside it, the refusal would roll this back too.
        ConsoleTicket.objects.filter(digest=digest).update(closed_at=now)
        raise


def _open_session(*, digest: str, session_user: User, now: datetime) -> ConsoleGrant:
    with transaction.atomic():
        row = ConsoleTicket.objects.select_related("user", "instance__stack__project", "instance__host").get(
            digest=digest
        )
        # Parallel redemptions of one user's tickets queue here, so the limit below cannot be raced past.
        Account.objects.select_for_update().filter(pk=row.user_id).first()
        grant = _check(row, session_user=session_user, now=now)
        ConsoleTicket.objects.filter(pk=row.pk).update(opened_at=now, last_seen_at=now)
        instance = row.instance
        audit.record(
            actor=row.user,
            action="console.open",
            target=instance,
            project=instance.stack.project,
            kind=row.kind,
            client_address=row.client_address,
            ticket=row.pk,
        )
    return grant


def _check(row: ConsoleTicket, *, session_user: User, now: datetime) -> ConsoleGrant:
    user, instance = row.user, row.instance
    if session_user.is_authenticated and session_user.pk != user.pk:
        raise ConsoleRefused(CLOSE_BAD_TICKET, "the ticket belongs to someone else")
    if not user.is_active:
        raise ConsoleRefused(CLOSE_BAD_TICKET, "the ticket's user is disabled")
    if not _same_password(row):
        raise ConsoleRefused(CLOSE_BAD_TICKET, "the user's password changed since the ticket was issued")
    role = role_in(user, instance.stack.project)
    if role is None:
        raise ConsoleRefused(CLOSE_NOT_FOUND, "no such instance")
    if role.rank < Role.MEMBER.rank:
        raise ConsoleRefused(CLOSE_FORBIDDEN, "consoles need the member role")
    reason = _not_running_reason(instance)
    if reason == "deleted":
        raise ConsoleRefused(CLOSE_NOT_FOUND, "the instance was deleted")
    if reason is not None:
        raise ConsoleRefused(CLOSE_NOT_RUNNING, f"the instance is {reason}")
    if instance.stack.expires_at <= now:
        raise ConsoleRefused(CLOSE_NOT_FOUND, "the stack's lease has ended")
    if instance.host is None or (row.kind == ConsoleTicket.Kind.VNC and not instance.vnc_port):
        raise ConsoleRefused(CLOSE_NOT_RUNNING, "the instance has no console")
    if _open_sessions(user.pk, now) >= max_open_per_user():
        raise ConsoleRefused(CLOSE_TOO_MANY, "too many consoles open")
    return ConsoleGrant(
        ticket_id=row.pk,
        kind=row.kind,
        user_id=user.pk,
        instance_id=instance.pk,
        stack_id=instance.stack_id,
        host_uri=instance.host.uri,
        console_address=instance.host.console_address,
        domain_name=instance.domain_name,
        vnc_port=instance.vnc_port,
        vnc_password=instance.vnc_password,
        stack_expires_at=instance.stack.expires_at,
        storage_pool=instance.host.storage_pool,
        console_log_name=console_log_volume_name(instance) if instance.volume_name else "",
    )


def _same_password(row: ConsoleTicket) -> bool:
    return constant_time_compare(row.user_auth_hash, row.user.get_session_auth_hash())


@dataclass(frozen=True)
class SessionState:
    """What an open session learns from its heartbeat: whether to go on, and until when at most."""

    end_reason: str | None
    expires_at: datetime | None


def console_session_heartbeat(*, ticket_id: int) -> SessionState:
    """Refresh the session's heartbeat and say whether it may go on (stack alive, lease running, role kept)."""
    now = timezone.now()
    row = ConsoleTicket.objects.select_related("user", "instance__stack__project").filter(pk=ticket_id).first()
    if row is None:
        return SessionState("the instance was deleted", None)
    ConsoleTicket.objects.filter(pk=ticket_id, closed_at__isnull=True).update(last_seen_at=now)
    instance, stack = row.instance, row.instance.stack
    if _not_running_reason(instance) is not None:
        return SessionState(f"the stack is {stack.status}", stack.expires_at)
    if stack.expires_at <= now:
        return SessionState("the stack's lease has ended", stack.expires_at)
    role = role_in(row.user, stack.project)
    if not row.user.is_active or role is None or role.rank < Role.MEMBER.rank:
        return SessionState("the user may no longer open this console", stack.expires_at)
    if not _same_password(row):
        return SessionState("the user's password changed", stack.expires_at)
    return SessionState(None, stack.expires_at)


def console_session_close(*, ticket_id: int, reason: str, bytes_to_vm: int = 0, bytes_from_vm: int = 0) -> None:
    """Mark the session closed and write it to the audit log (who, which instance, from where, how long)."""
    now = timezone.now()
    with transaction.atomic():
        closed = ConsoleTicket.objects.filter(pk=ticket_id, opened_at__isnull=False, closed_at__isnull=True).update(
            closed_at=now
        )
        if not closed:
            return  # closed already (both ends may report the end)
        row = ConsoleTicket.objects.select_related("user", "instance__stack__project").get(pk=ticket_id)
        assert row.opened_at is not None
        audit.record(
            actor=row.user,
            action="console.close",
            target=row.instance,
            project=row.instance.stack.project,
            kind=row.kind,
            client_address=row.client_address,
            ticket=row.pk,
            opened_at=row.opened_at.isoformat(),
            duration_seconds=round((now - row.opened_at).total_seconds(), 1),
            bytes_to_vm=bytes_to_vm,
            bytes_from_vm=bytes_from_vm,
            reason="".join(ch for ch in reason if ch.isprintable())[:500],
        )


# Ticket rows are working state: the audit log keeps each session (console.open, console.close).
PRUNE_AFTER = timedelta(days=1)


def console_tickets_prune(*, now: datetime | None = None) -> int:
    """Delete ticket rows done with for a day: closed, never used, or whose session stopped beating."""
    cutoff = (now or timezone.now()) - PRUNE_AFTER
    done = ConsoleTicket.objects.filter(
        Q(closed_at__lt=cutoff)
        | Q(used_at__isnull=True, expires_at__lt=cutoff)
        | Q(closed_at__isnull=True, used_at__lt=cutoff, last_seen_at__isnull=True)
        | Q(closed_at__isnull=True, last_seen_at__lt=cutoff)
    )
    deleted, _by_model = done.delete()
    return deleted


__all__ = [
    "CLOSE_BAD_TICKET",
    "CLOSE_ENDED",
    "CLOSE_FORBIDDEN",
    "CLOSE_NOT_FOUND",
    "CLOSE_NOT_RUNNING",
    "CLOSE_TOO_MANY",
    "CLOSE_UNREACHABLE",
    "HEARTBEAT_SECONDS",
    "TICKET_SECONDS",
    "ConsoleGrant",
    "ConsoleRefused",
    "IssuedTicket",
    "SessionState",
    "console_session_close",
    "console_session_heartbeat",
    "console_ticket_issue",
    "console_ticket_redeem",
    "console_tickets_prune",
]

"""Idle stacks: warned, then shelved (never deleted), in projects that set ``idle_after_seconds``.

Every minute the sweep samples the guests of each running stack in such a project, one driver call
per host, and compares the sample with the one before (kept in ``StackActivity``). The stack is
busy, as a whole, when any one of these held since the last sample:

- one of its tiers used more than ``IDLE_CPU_PERCENT`` of one vCPU;
- one of its tiers' published ports carries a connection now, or closed one in the last seconds
  (see ``provisioning.drivers.libvirt_stats`` for what QEMU lets the portal see, and what not);
- a console session of one of its instances was open.

A busy stack's idle clock starts again (``last_active_at``). A stack idle for its project's
``idle_after_seconds`` less the warning period (``IDLE_WARNING_SECONDS``, at most half the idle
period) is warned once, saying when it will be shelved; being used again clears the warning. At
that moment it is shelved, with its memory, as a member would shelve it.

The sweep judges only from what it saw: the first sample of a stack (after it started running, or
after its project turned the rule on) only starts the clock, and a host that does not answer leaves
its stacks as they were until it does. A stack that stops running loses its record, so counters of
an earlier run never judge a later one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal import errors
from portal.moments import duration_text
from provisioning.consoles.tickets import STALE_AFTER
from provisioning.drivers import DriverError
from provisioning.drivers.base import DomainActivity
from provisioning.models import ConsoleTicket, Host, Instance, Stack, StackActivity, Status
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.shelving import stack_shelve
from provisioning.signals import tell

logger = logging.getLogger(__name__)

Sampler = Callable[[Host, list[str]], dict[str, DomainActivity]]
"""Samples the named domains of one host (raising ``DriverError`` if it cannot): the driver, by default."""

Kind = StackActivity.Kind


def sample_host(host: Host, names: list[str]) -> dict[str, DomainActivity]:
    with driver_for(host) as driver:
        return driver.domain_activity(names=names)


@dataclass(frozen=True)
class _Session:
    """A console session, as much of it as tells whether it was open between two moments."""

    stack_id: int
    opened_at: datetime
    closed_at: datetime | None
    last_seen_at: datetime | None

    def open_between(self, since: datetime, now: datetime) -> bool:
        if self.opened_at > now:
            return False
        if self.closed_at is not None:
            return self.closed_at >= since
        # Still open, unless its process died: then it was last alive at its last heartbeat.
        seen = self.last_seen_at or self.opened_at
        return seen >= min(since, now - STALE_AFTER)


def idle_sweep(*, now: datetime | None = None, sample: Sampler = sample_host) -> int:
    """Sample, warn and shelve idle stacks (see the module's note); return how many were warned or shelved."""
    now = now or timezone.now()
    _forget_unwatched_stacks()
    stacks = list(
        Stack.objects.filter(status=Status.RUNNING, project__idle_after_seconds__isnull=False).select_related("project")
    )
    if not stacks:
        return 0
    tiers = _tiers_by_stack(stacks)
    samples = _sample_hosts(tiers.values(), sample)
    records = {record.stack_id: record for record in StackActivity.objects.filter(stack__in=stacks)}
    sessions = _console_sessions(records.values())
    acted = 0
    for stack in stacks:
        activity = _activity_of(tiers.get(stack.pk, []), samples)
        if activity is None:
            continue  # no instances to sample, or a host that did not answer: no judgment from missing data
        record = records.get(stack.pk)
        if record is None:
            # The first sample starts the clock (get_or_create: a sweep running beside may start it too).
            StackActivity.objects.get_or_create(
                stack=stack, defaults={"sampled_at": now, "cpu_ns": _cpu_of(activity), "last_active_at": now}
            )
            continue
        if now <= record.sampled_at:
            continue  # a sweep running beside another one: the later sample judges
        acted += _judge(stack, record, activity=activity, sessions=sessions.get(stack.pk, []), now=now)
    return acted


def _forget_unwatched_stacks() -> None:
    """Drop the records of stacks that stopped running or whose project no longer shelves idle stacks."""
    StackActivity.objects.filter(
        ~Q(stack__status=Status.RUNNING) | Q(stack__project__idle_after_seconds__isnull=True)
    ).delete()


def _tiers_by_stack(stacks: list[Stack]) -> dict[int, list[Instance]]:
    tiers: dict[int, list[Instance]] = defaultdict(list)
    live = Instance.objects.filter(stack__in=stacks, host__isnull=False).exclude(status=Status.DELETED)
    for instance in live.exclude(domain_name="").select_related("host"):
        tiers[instance.stack_id].append(instance)
    return tiers


def _sample_hosts(tiers: Iterable[list[Instance]], sample: Sampler) -> dict[int, dict[str, DomainActivity]]:
    """One sample per host of every domain named; a host that does not answer is left out."""
    hosts: dict[int, Host] = {}
    names: dict[int, list[str]] = defaultdict(list)
    for stack_tiers in tiers:
        for instance in stack_tiers:
            assert instance.host is not None
            hosts[instance.host.pk] = instance.host
            names[instance.host.pk].append(instance.domain_name)
    samples: dict[int, dict[str, DomainActivity]] = {}
    for host_id, host in hosts.items():
        try:
            samples[host_id] = sample(host, sorted(names[host_id]))
        except DriverError as exc:
            logger.warning("host %s: no activity sample this round: %s", host.name, exc.message)
    return samples


def _activity_of(
    tiers: list[Instance], samples: dict[int, dict[str, DomainActivity]]
) -> dict[Instance, DomainActivity] | None:
    """Each tier's sample, or None if any tier has none (its host did not answer, its domain is gone)."""
    if not tiers:
        return None
    activity: dict[Instance, DomainActivity] = {}
    for instance in tiers:
        seen = samples.get(instance.host_id or 0, {}).get(instance.domain_name)
        if seen is None:
            return None
        activity[instance] = seen
    return activity


def _cpu_of(activity: dict[Instance, DomainActivity]) -> dict[str, int]:
    return {str(instance.pk): seen.cpu_time_ns for instance, seen in activity.items()}


def _console_sessions(records: Iterable[StackActivity]) -> dict[int, list[_Session]]:
    """The console sessions that may have been open since each stack's last sample, by stack."""
    records = list(records)
    if not records:
        return {}
    # Closed sessions matter from the oldest last sample on; open ones always do.
    oldest = min(record.sampled_at for record in records) - STALE_AFTER
    rows = ConsoleTicket.objects.filter(
        instance__stack_id__in=[record.stack_id for record in records], opened_at__isnull=False
    ).filter(Q(closed_at__isnull=True) | Q(closed_at__gte=oldest))
    sessions: dict[int, list[_Session]] = defaultdict(list)
    for stack_id, opened_at, closed_at, last_seen_at in rows.values_list(
        "instance__stack_id", "opened_at", "closed_at", "last_seen_at"
    ):
        if opened_at is not None:  # filtered above; said again for the type checker
            sessions[stack_id].append(_Session(stack_id, opened_at, closed_at, last_seen_at))
    return sessions


def _busy_because(
    record: StackActivity,
    activity: dict[Instance, DomainActivity],
    sessions: list[_Session],
    now: datetime,
) -> str:
    """What kept the stack busy since its last sample (a ``StackActivity.Kind``), or "" if nothing did."""
    if any(session.open_between(record.sampled_at, now) for session in sessions):
        return Kind.CONSOLE
    if any(seen.connections or seen.recently_closed for seen in activity.values()):
        return Kind.CONNECTION
    elapsed_ns = (now - record.sampled_at) / timedelta(microseconds=1) * 1000
    for instance, seen in activity.items():
        before = record.cpu_ns.get(str(instance.pk))
        if before is None or not seen.running:
            continue
        # A counter lower than before: the guest started again since, and all it counts is new.
        used = seen.cpu_time_ns - before if seen.cpu_time_ns >= before else seen.cpu_time_ns
        if used * 100 > elapsed_ns * settings.IDLE_CPU_PERCENT:
            return Kind.CPU
    return ""


def warning_seconds(idle_after_seconds: int) -> int:
    """How long before shelving an idle stack its members are warned: at most half its idle period."""
    return min(settings.IDLE_WARNING_SECONDS, idle_after_seconds // 2)


def _judge(
    stack: Stack,
    record: StackActivity,
    *,
    activity: dict[Instance, DomainActivity],
    sessions: list[_Session],
    now: datetime,
) -> int:
    """Record the sample and act on it: 1 if the stack was warned or shelved, else 0."""
    sampled = StackActivity.objects.filter(pk=record.pk)
    because = _busy_because(record, activity, sessions, now)
    if because:
        sampled.update(
            sampled_at=now,
            cpu_ns=_cpu_of(activity),
            last_active_at=now,
            last_activity=because,
            idle_warned_at=None,
            idle_shelve_at=None,
        )
        if record.idle_warned_at is not None:
            stack_event(stack, "in use again: it will not be shelved for being idle")
        return 0
    sampled.update(sampled_at=now, cpu_ns=_cpu_of(activity))
    idle_after = timedelta(seconds=stack.project.idle_after_seconds or 0)
    warning = timedelta(seconds=warning_seconds(stack.project.idle_after_seconds or 0))
    acted = 0
    shelve_at = record.idle_shelve_at
    if record.idle_warned_at is None:
        if now < record.last_active_at + idle_after - warning:
            return 0
        # A late sweep (workers that were down) still gives the members the whole warning period.
        shelve_at = max(record.last_active_at + idle_after, now + warning)
        if not _warn(stack, record, now=now, shelve_at=shelve_at):
            return 0
        acted = 1
    if shelve_at is None or now < shelve_at:
        return acted
    return max(acted, _shelve(stack, record, now=now))


def _warn(stack: Stack, record: StackActivity, *, now: datetime, shelve_at: datetime) -> bool:
    """Warn the stack's members once that it will be shelved at ``shelve_at``; False if it no longer runs."""
    with transaction.atomic():
        locked = Stack.objects.select_for_update().select_related("project").filter(pk=stack.pk).first()
        if locked is None or locked.status != Status.RUNNING:
            return False
        warned = StackActivity.objects.filter(pk=record.pk, idle_warned_at__isnull=True).update(
            idle_warned_at=now, idle_shelve_at=shelve_at
        )
        if not warned:
            return False  # another sweep warned it meanwhile
        stack_event(locked, "idle: it will be shelved unless it is used before", moment=shelve_at)
        tell(locked, "stack.idle", moment=shelve_at)
    return True


def _shelve(stack: Stack, record: StackActivity, *, now: datetime) -> int:
    idle_for = int((now - record.last_active_at).total_seconds())
    try:
        stack_shelve(user=None, stack=stack, reason=f"idle for {duration_text(idle_for)}")
    except errors.PortalError as exc:
        # It stopped running or a job took it since the sweep looked: the next sweep sees how it is.
        logger.info("stack %s: not shelved for being idle: %s", stack.pk, exc.detail)
        return 0
    # It is not running any more: its next run starts a new clock (a shelve that fails and brings
    # it back to running gives it a whole idle period again, not a retry every minute).
    StackActivity.objects.filter(pk=record.pk).delete()
    return 1


__all__ = ["Sampler", "idle_sweep", "sample_host", "warning_seconds"]

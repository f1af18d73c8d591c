"""The usage sampler: every minute, add what each stack held since its last sample to its day's record.

A stack is sampled while it has instances in ``ACTIVE_STATUSES``. It is charged for vCPUs and memory
of its instances in ``COMPUTE_STATUSES`` (a shelved instance gives them back), the disks of all its
active instances, and the space its snapshots take (``StackSnapshot.size_bytes``).

Each stack's ``UsageCursor`` says up to which moment it has been counted; a sample adds the time
from there to now at what the stack holds now, split at midnight UTC into the records of each day.
So a change of size is counted from the sample before it: with the sampler running every minute,
each change is off by less than a minute, and no moment is counted twice or left out.

A sample adds at most ``MAX_SAMPLE_GAP``. If the sampler was down (the workers stopped, the host
rebooted), the portal does not know what the stack held meanwhile and charges nothing for the rest
of the gap rather than guess. A new stack's first sample counts from its creation, within the cap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from provisioning.models import ACTIVE_STATUSES, COMPUTE_STATUSES, Instance, Stack, StackSnapshot
from usage.models import QUANTITY_PLACES, UsageCursor, UsageRecord
from usage.pricing import Prices, UnitHours, current_prices, held_for

# The most one sample adds for a stack (see the module's note).
MAX_SAMPLE_GAP = timedelta(minutes=10)
_QUANTUM = Decimal(1).scaleb(-QUANTITY_PLACES)
_MICROSECONDS_PER_HOUR = Decimal(3600 * 10**6)
_QUANTITY_FIELDS = ("vcpu_hours", "memory_gib_hours", "disk_gib_hours", "snapshot_gib_hours", "cost")


@dataclass(frozen=True)
class Holding:
    """What one stack holds at the moment of a sample."""

    vcpus: int
    memory_mib: int
    disk_gib: int
    snapshot_bytes: int


def day_pieces(start: datetime, end: datetime) -> Iterator[tuple[date, timedelta]]:
    """``[start, end)`` cut at each midnight UTC: the day (UTC) of each piece and its length."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    while start < end:
        next_midnight = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=UTC)
        piece_end = min(end, next_midnight)
        yield start.date(), piece_end - start
        start = piece_end


def _hours(length: timedelta) -> Decimal:
    return Decimal(length // timedelta(microseconds=1)) / _MICROSECONDS_PER_HOUR


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(_QUANTUM)


def _holdings(stack_ids: list[int]) -> dict[int, Holding]:
    compute = Q(status__in=COMPUTE_STATUSES)
    instances = (
        Instance.objects.filter(stack_id__in=stack_ids, status__in=ACTIVE_STATUSES)
        .order_by()
        .values("stack_id")
        .annotate(
            vcpus=Coalesce(Sum("vcpus", filter=compute), 0),
            memory_mib=Coalesce(Sum("memory_mib", filter=compute), 0),
            disk_gib=Coalesce(Sum("disk_gib"), 0),
        )
    )
    snapshots = dict(
        StackSnapshot.objects.filter(stack_id__in=stack_ids)
        .order_by()
        .values("stack_id")
        .annotate(total=Coalesce(Sum("size_bytes"), 0))
        .values_list("stack_id", "total")
    )
    return {
        row["stack_id"]: Holding(
            vcpus=row["vcpus"],
            memory_mib=row["memory_mib"],
            disk_gib=row["disk_gib"],
            snapshot_bytes=snapshots.get(row["stack_id"], 0),
        )
        for row in instances
    }


def _add(record: UsageRecord, used: UnitHours, prices: Prices) -> None:
    record.vcpu_hours = _rounded(record.vcpu_hours + used.vcpu)
    record.memory_gib_hours = _rounded(record.memory_gib_hours + used.memory_gib)
    record.disk_gib_hours = _rounded(record.disk_gib_hours + used.disk_gib)
    record.snapshot_gib_hours = _rounded(record.snapshot_gib_hours + used.snapshot_gib)
    record.cost = _rounded(record.cost + used.cost(prices))


def usage_sample(*, now: datetime | None = None) -> int:
    """Add every active stack's usage since its last sample; returns how many stacks were sampled."""
    now = now or timezone.now()
    active = Instance.objects.filter(status__in=ACTIVE_STATUSES).values("stack_id")
    stack_ids = sorted(set(active.values_list("stack_id", flat=True)))
    prices = current_prices()
    with transaction.atomic():
        UsageCursor.objects.bulk_create([UsageCursor(stack_id=pk) for pk in stack_ids], ignore_conflicts=True)
        # Locked in one order, so parallel samplers queue here instead of deadlocking; the one that
        # waited reads the cursors the other moved and adds only what is left.
        cursors = {c.stack_id: c for c in UsageCursor.objects.select_for_update().filter(stack_id__in=stack_ids)}
        stacks = (
            Stack.objects.filter(pk__in=stack_ids)
            .select_related("created_by")
            .only("pk", "name", "project_id", "created_at", "created_by__username")
        )
        holdings = _holdings(stack_ids)
        pieces: list[tuple[Stack, date, UnitHours]] = []
        for stack in stacks:
            cursor, holding = cursors.get(stack.pk), holdings.get(stack.pk)
            if cursor is None or holding is None:  # gone, or no longer active, since the ids were read
                continue
            start = max(cursor.sampled_at or stack.created_at, now - MAX_SAMPLE_GAP)
            for day, length in day_pieces(start, now):
                used = held_for(
                    hours=_hours(length),
                    vcpus=holding.vcpus,
                    memory_mib=holding.memory_mib,
                    disk_gib=holding.disk_gib,
                    snapshot_bytes=holding.snapshot_bytes,
                )
                pieces.append((stack, day, used))
            cursor.sampled_at = max(cursor.sampled_at or now, now)
        _write(pieces, prices=prices, now=now)
        UsageCursor.objects.bulk_update(cursors.values(), ["sampled_at"])
    # Cursors of stacks that no longer hold anything, in a transaction of their own (it locks other rows).
    UsageCursor.objects.exclude(stack_id__in=active).delete()
    return len({stack.pk for stack, _, _ in pieces})


def _write(pieces: list[tuple[Stack, date, UnitHours]], *, prices: Prices, now: datetime) -> None:
    """Add each piece to its stack's record of its day, creating the records a day does not have yet."""
    if not pieces:
        return
    keys = {(stack.pk, day) for stack, day, _ in pieces}
    existing = {
        (record.kept_stack_id, record.date): record
        for record in UsageRecord.objects.filter(
            kept_stack_id__in={pk for pk, _ in keys}, date__in={day for _, day in keys}
        )
    }
    created: dict[tuple[int, date], UsageRecord] = {}
    changed: dict[tuple[int, date], UsageRecord] = {}
    for stack, day, used in pieces:
        key = (stack.pk, day)
        record = changed.get(key) or created.get(key)
        if record is None and key in existing:
            record = changed[key] = existing[key]
        if record is None:
            record = created[key] = UsageRecord(
                project_id=stack.project_id, stack=stack, kept_stack_id=stack.pk, date=day
            )
        record.stack_name = stack.name
        record.user = stack.created_by
        record.username = stack.created_by.username if stack.created_by else record.username
        record.updated_at = now
        _add(record, used, prices)
    UsageRecord.objects.bulk_update(
        changed.values(), [*_QUANTITY_FIELDS, "stack_name", "user", "username", "updated_at"], batch_size=500
    )
    UsageRecord.objects.bulk_create(created.values(), batch_size=500)

"""Warning people before a lease ends, at the offsets of their project's policy (``warn_before``).

Each offset is sent once per lease end (``LeaseWarning`` marks it); a renewed lease has a new end
and is warned again. A warning whose moment has already passed (a lease shorter than the warning,
a worker that was busy) goes out at once, but only the one closest to the end: a 30-minute lease
gets the "1 hour before" warning at launch, not "24 hours" and "1 hour" together. The offsets it
passes over are marked too, so they never go out late.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from notices.announce import announce
from notices.models import Event, LeaseWarning
from provisioning.models import DELETABLE_STATUSES, Stack

# The policy allows warnings up to this long before an end (portal.policy); stacks ending later
# cannot be due, so the sweep does not read them.
LONGEST_WARNING = timedelta(days=31)


def lease_warnings_send(*, now: datetime | None = None) -> int:
    """Send every lease warning that is due at ``now``; returns how many were sent."""
    now = now or timezone.now()
    warned = LeaseWarning.objects.filter(stack=OuterRef("pk"), expires_at=OuterRef("expires_at"))
    candidates = (
        Stack.objects.filter(status__in=DELETABLE_STATUSES, expires_at__gt=now, expires_at__lte=now + LONGEST_WARNING)
        .select_related("project")
        .annotate(closest_warned=Subquery(warned.order_by("offset_seconds").values("offset_seconds")[:1]))
        .order_by("expires_at")
    )
    sent = 0
    for stack in _in_chunks(candidates):
        due = _due_offsets(stack, now=now)
        if not due:
            continue
        closest = min(due)
        closest_sent: int | None = getattr(stack, "closest_warned")  # noqa: B009 - the annotation above
        if closest_sent is not None and closest_sent <= closest:
            continue  # this one, or one closer to the end, went out already
        sent += _warn(stack, offset=closest, passed_over=[offset for offset in due if offset != closest])
    return sent


def _due_offsets(stack: Stack, *, now: datetime) -> list[int]:
    """The policy's offsets whose moment, before this lease end, has come."""
    offsets = {int(offset) for offset in stack.project.warn_before if isinstance(offset, int) and offset > 0}
    return [offset for offset in offsets if stack.expires_at - timedelta(seconds=offset) <= now]


def _warn(stack: Stack, *, offset: int, passed_over: list[int]) -> int:
    try:
        with transaction.atomic():
            # The marker first: a second worker sweeping at the same time stops here, before any message.
            LeaseWarning.objects.create(stack=stack, expires_at=stack.expires_at, offset_seconds=offset)
            LeaseWarning.objects.bulk_create(
                [
                    LeaseWarning(stack=stack, expires_at=stack.expires_at, offset_seconds=skipped, sent=False)
                    for skipped in passed_over
                ],
                ignore_conflicts=True,
            )
            announce(stack=stack, event=Event.LEASE_WARNING, moment=stack.expires_at, offset_seconds=offset)
    except IntegrityError:
        return 0
    return 1


def _in_chunks(stacks: QuerySet[Stack], size: int = 500) -> Iterator[Stack]:
    """The stacks a chunk at a time, each chunk read whole before any is written about: a cursor kept
    open across the writes is not safe on SQLite (the demo's database), where it was closed under us."""
    ids = list(stacks.values_list("pk", flat=True))
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        by_id = {stack.pk: stack for stack in stacks.filter(pk__in=chunk)}
        yield from (by_id[pk] for pk in chunk if pk in by_id)

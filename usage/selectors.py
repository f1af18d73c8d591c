"""Reads of usage records, always of one project the caller was already let into."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum
from django.db.models.functions import Coalesce

from portal import errors
from portal.models import Project
from provisioning.models import Stack
from usage.models import UsageRecord
from usage.periods import UsagePeriod

# One report holds at most this many rows (a stack and a day each); a longer one is refused, asking for
# a shorter period, rather than building an answer without bound.
MAX_ROWS = 100_000
# The chart stacks this many stacks by name (the costliest of the period) and the rest as one bar part.
CHART_STACKS = 8
QUANTITIES = ("vcpu_hours", "memory_gib_hours", "disk_gib_hours", "snapshot_gib_hours", "cost")


def project_usage_records(*, project: Project, period: UsagePeriod) -> QuerySet[UsageRecord]:
    """The project's records of the period, by day then stack; ``errors.Invalid`` if there are too many."""
    records = UsageRecord.objects.filter(project=project, date__gte=period.start, date__lte=period.end).order_by(
        "date", "stack_name", "kept_stack_id"
    )
    if records[MAX_ROWS : MAX_ROWS + 1].exists():
        raise errors.Invalid.for_field("from", f"the period holds more than {MAX_ROWS} rows: ask for a shorter one")
    return records


def usage_totals(records: QuerySet[UsageRecord]) -> dict[str, Decimal]:
    """Each quantity and the cost, summed over ``records``."""
    zero = Decimal(0)
    sums = records.order_by().aggregate(**{name: Coalesce(Sum(name), zero) for name in QUANTITIES})
    return {name: Decimal(sums[name]) for name in QUANTITIES}


def stack_cost_so_far(stack: Stack) -> Decimal:
    """What the stack has cost up to the last sample (at most a minute or two ago)."""
    total = UsageRecord.objects.filter(kept_stack_id=stack.pk).aggregate(total=Coalesce(Sum("cost"), Decimal(0)))
    return Decimal(total["total"])


@dataclass(frozen=True)
class ChartSeries:
    label: str
    costs: list[float]  # one per day of the period; a chart needs numbers, the table keeps the exact ones


def chart_data(records: QuerySet[UsageRecord], period: UsagePeriod, *, currency: str) -> dict[str, Any]:
    """Cost per day of the period, one series per stack (the costliest ``CHART_STACKS``, then the rest)."""
    days = period.days
    index = {day: n for n, day in enumerate(days)}
    by_stack: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(days))
    names: dict[int, str] = {}
    for stack_id, name, day, cost in records.values_list("kept_stack_id", "stack_name", "date", "cost"):
        by_stack[stack_id][index[day]] += cost
        names[stack_id] = name
    ranked = sorted(by_stack, key=lambda stack_id: (-sum(by_stack[stack_id]), names[stack_id], stack_id))
    # A name can come back (a stack deleted, another launched under its name): tell them apart by id.
    repeated = {name for name in names.values() if list(names.values()).count(name) > 1}
    labels = {pk: f"{name} (#{pk})" if name in repeated else name for pk, name in names.items()}
    series = [
        ChartSeries(labels[stack_id], [float(c) for c in by_stack[stack_id]]) for stack_id in ranked[:CHART_STACKS]
    ]
    rest = ranked[CHART_STACKS:]
    if rest:
        summed = [sum((by_stack[stack_id][n] for stack_id in rest), Decimal(0)) for n in range(len(days))]
        series.append(ChartSeries(f"{len(rest)} other stacks", [float(c) for c in summed]))
    return {
        "currency": currency,
        "days": [day.isoformat() for day in days],
        "series": [{"label": s.label, "costs": s.costs} for s in series],
    }

"""Reading and pruning the sample history: an instance's or a host's series, and their peaks and averages.

Readers pass a scoped row (an instance the caller may see, a host for operators): these functions do
no access checks of their own. A series is at most ``MAX_SERIES`` samples, oldest first; a caller that
needs more asks again from the moment after the last one it got.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Avg, Max
from django.utils import timezone

from metrics.models import HostSample, InstanceSample
from portal import errors
from provisioning.models import Host, Instance

# Two days of samples a minute apart fit in two reads.
MAX_SERIES = 1500
# What a reader gets without naming a start: the last hour.
DEFAULT_WINDOW = timedelta(hours=1)
# An unencoded "+" in a query string arrives as a space: "12:00:00 02:00" meant "12:00:00+02:00".
_OFFSET_AS_SPACE = re.compile(r" (?=[0-9]{2}(:?[0-9]{2})?$)")
# The figures an instance's summary gives a peak and an average of: its rates and its memory in use.
SUMMARY_FIELDS = (
    "cpu_percent",
    "memory_used_mib",
    "disk_read_bytes_sec",
    "disk_write_bytes_sec",
    "net_rx_bytes_sec",
    "net_tx_bytes_sec",
)


def parse_since(text: str | None, *, now: datetime | None = None) -> datetime:
    """The start a reader asked for (ISO 8601; without an offset, UTC); ``errors.Invalid`` naming ``since``.

    Left out: ``DEFAULT_WINDOW`` before now.
    """
    if text is None:
        return (now or timezone.now()) - DEFAULT_WINDOW
    message = "since must be a moment in ISO 8601, e.g. 2026-01-31T12:00:00Z or 2026-01-31T12:00:00+02:00"
    try:
        moment = datetime.fromisoformat(_OFFSET_AS_SPACE.sub("+", text.strip()))
        # In UTC: databases take fewer offsets than Python (PostgreSQL none beyond about 16 hours).
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that moves it past year 1 or 9999
        raise errors.Invalid.for_field("since", message) from None


def instance_series(*, instance: Instance, since: datetime, limit: int = MAX_SERIES) -> list[InstanceSample]:
    """The instance's samples taken at ``since`` or later, oldest first, at most ``limit``."""
    rows = InstanceSample.objects.filter(instance=instance, sampled_at__gte=since).order_by("sampled_at")
    return list(rows[:limit])


def instance_summary(*, instance: Instance, since: datetime) -> dict[str, dict[str, float | None]]:
    """Peak and average of each of ``SUMMARY_FIELDS`` over the samples since ``since`` (one query).

    ``{"cpu_percent": {"peak": 87.5, "average": 12.25}, ...}``; both are None where no sample had the
    figure (a run's first sample has no rates).
    """
    aggregates: dict[str, Max | Avg] = {}
    for name in SUMMARY_FIELDS:
        aggregates[f"{name}__peak"] = Max(name)
        aggregates[f"{name}__average"] = Avg(name)
    values = InstanceSample.objects.filter(instance=instance, sampled_at__gte=since).aggregate(**aggregates)
    return {
        name: {"peak": _number(values[f"{name}__peak"]), "average": _number(values[f"{name}__average"])}
        for name in SUMMARY_FIELDS
    }


def host_series(*, host: Host, since: datetime, limit: int = MAX_SERIES) -> list[HostSample]:
    """The host's samples taken at ``since`` or later, oldest first, at most ``limit``."""
    return list(HostSample.objects.filter(host=host, sampled_at__gte=since).order_by("sampled_at")[:limit])


def prune_samples(*, now: datetime | None = None) -> int:
    """Delete samples older than ``settings.METRICS_HISTORY_SECONDS``; returns how many rows went."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.METRICS_HISTORY_SECONDS)
    instances, _ = InstanceSample.objects.filter(sampled_at__lt=cutoff).delete()
    hosts, _ = HostSample.objects.filter(sampled_at__lt=cutoff).delete()
    return instances + hosts


def _number(value: float | Decimal | None) -> float | None:
    return None if value is None else round(float(value), 3)


__all__ = [
    "MAX_SERIES",
    "SUMMARY_FIELDS",
    "host_series",
    "instance_series",
    "instance_summary",
    "parse_since",
    "prune_samples",
]

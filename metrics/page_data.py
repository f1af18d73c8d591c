"""Reads for the pages of what guests and hosts used, always narrowed to what the caller may see.

Each page costs a fixed number of queries, however many samples a window holds: an instance's page
reads its samples once; the stack page reads one aggregate row per instance; the Hosts page reads
every host's samples in one query.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Avg, Count, Max, Min

from metrics.models import HostSample, InstanceSample
from portal.moments import moment_text
from portal.scoping import User
from provisioning.models import Host, Instance, Stack

# The windows an instance's page offers: (key in the address, seconds, words for the picker).
WINDOWS = {"1h": (3600, "Last hour"), "6h": (6 * 3600, "Last 6 hours"), "24h": (24 * 3600, "Last day")}
DEFAULT_WINDOW = "1h"
# A chart draws at most this many points: a day of 5-second samples is thinned to the busiest of each
# run of neighbours (peaks stay visible); the figures beside the chart are worked out from every sample.
CHART_POINTS = 360
# The stack page's suggestion looks back this far; the Hosts page draws this much of each host's load.
TIER_LOOKBACK = timedelta(days=1)
HOST_LOOKBACK = timedelta(hours=6)

# What an instance's page charts and sums up: the sample's field, the words for it, its unit.
MEASURES = (
    ("cpu_percent", "CPU", "percent"),
    ("memory_used_mib", "Memory used", "mib"),
    ("disk_read_bytes_sec", "Disk reads", "bytes_sec"),
    ("disk_write_bytes_sec", "Disk writes", "bytes_sec"),
    ("net_rx_bytes_sec", "Network in", "bytes_sec"),
    ("net_tx_bytes_sec", "Network out", "bytes_sec"),
)
_Sample = TypeVar("_Sample", InstanceSample, HostSample)
SAMPLE_FIELDS = ("sampled_at", "memory_mib", *(name for name, _words, _unit in MEASURES))


@dataclass(frozen=True)
class Figure:
    """The peak of one measure over a window, when it was reached, and the average."""

    peak: float
    peak_at: datetime
    average: float


def window_key(asked: str | None) -> str:
    """The window the address asks for (``?window=6h``); anything else is the default."""
    return asked if asked in WINDOWS else DEFAULT_WINDOW


def instance_visible_to(user: User, *, instance_id: int) -> Instance:
    """One of the user's instances with its stack and host; ``errors.NotFound`` for any other id."""
    return Instance.objects.select_related("stack__project", "host").get_visible(user, pk=instance_id)


def instance_series(*, instance: Instance, since: datetime) -> list[InstanceSample]:
    """The instance's samples from ``since`` on, oldest first."""
    rows = InstanceSample.objects.filter(instance=instance, sampled_at__gte=since).only(*SAMPLE_FIELDS)
    return list(rows.order_by("sampled_at"))


def last_sample_at(*, instance: Instance) -> datetime | None:
    return InstanceSample.objects.filter(instance=instance).aggregate(last=Max("sampled_at"))["last"]


def instance_summary(*, samples: Sequence[InstanceSample]) -> dict[str, Figure | None]:
    """Peak (and when) and average of every measure; None for a measure no sample has a value for
    (a rate needs two samples of one run; memory used needs the guest's balloon or QEMU's figure)."""
    summary = {}
    for name, _words, _unit in MEASURES:
        values = [(getattr(sample, name), sample.sampled_at) for sample in samples]
        summary[name] = _figure([(value, at) for value, at in values if value is not None])
    return summary


def _thinned(samples: Sequence[_Sample], limit: int) -> list[list[_Sample]]:
    size = max(1, math.ceil(len(samples) / limit))
    return [list(samples[start : start + size]) for start in range(0, len(samples), size)]


def _share(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _busiest(run: Iterable[InstanceSample | HostSample], name: str) -> float | None:
    known = [value for sample in run if (value := getattr(sample, name)) is not None]
    return max(known) if known else None


def instance_charts(*, samples: Sequence[InstanceSample]) -> dict[str, Any]:
    """The four charts' data for a page's data island: moments as the one formatter writes them."""
    runs = _thinned(samples, CHART_POINTS)
    column = {name: [_busiest(run, name) for run in runs] for name in SAMPLE_FIELDS[1:]}
    return {
        "labels": [moment_text(run[-1].sampled_at) for run in runs],
        "cpu": {"unit": "percent", "series": [{"label": "CPU (% of its vCPUs)", "data": column["cpu_percent"]}]},
        "memory": {
            "unit": "mib",
            "series": [
                {"label": "Memory used (MiB)", "data": column["memory_used_mib"]},
                {"label": "Memory given (MiB)", "data": column["memory_mib"]},
            ],
        },
        "disk": {
            "unit": "bytes_sec",
            "series": [
                {"label": "Reads", "data": column["disk_read_bytes_sec"]},
                {"label": "Writes", "data": column["disk_write_bytes_sec"]},
            ],
        },
        "network": {
            "unit": "bytes_sec",
            "series": [
                {"label": "In", "data": column["net_rx_bytes_sec"]},
                {"label": "Out", "data": column["net_tx_bytes_sec"]},
            ],
        },
    }


@dataclass
class TierUse:
    """What one tier's instances used over the stack page's look-back, and how long that was watched.

    ``vcpus``, ``memory_mib`` and ``disk_gib`` are the tier's size now (its instances share one);
    the peaks are the highest of any of its instances. ``observed_seconds`` is how long the
    best-watched instance's samples cover (gaps, say while it was stopped, do not count).
    """

    tier: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    samples: int = 0
    observed_seconds: float = 0.0
    peak_cpu_percent: float | None = None
    average_cpu_percent: float | None = None
    peak_memory_used_mib: int | None = None
    instances: list[Instance] = field(default_factory=list)


def _higher(current: float | None, new: float | None) -> float | None:
    if new is None:
        return current
    return new if current is None else max(current, new)


def tier_uses(*, stack: Stack, since: datetime) -> list[TierUse]:
    """Per tier of ``stack`` (in its instances' order), the peaks since ``since``: one query."""
    step = settings.METRICS_SAMPLE_SECONDS
    tiers: dict[str, TierUse] = {}
    for instance in stack.instances.all():  # prefetched by the stack page's selector
        if instance.role not in tiers:
            tiers[instance.role] = TierUse(instance.role, instance.vcpus, instance.memory_mib, instance.disk_gib)
        use = tiers[instance.role]
        use.instances.append(instance)
    rows = (
        InstanceSample.objects.filter(instance__stack=stack, sampled_at__gte=since)
        .values("instance_id")
        .annotate(
            count=Count("id"),
            first=Min("sampled_at"),
            last=Max("sampled_at"),
            peak_cpu=Max("cpu_percent"),
            average_cpu=Avg("cpu_percent"),
            peak_memory=Max("memory_used_mib"),
        )
        .order_by()
    )
    by_instance = {row["instance_id"]: row for row in rows}
    for use in tiers.values():
        for instance in use.instances:
            row = by_instance.get(instance.pk)
            if row is None:
                continue
            covered = min(row["count"] * step, (row["last"] - row["first"]).total_seconds() + step)
            if covered > use.observed_seconds:
                use.observed_seconds, use.samples = covered, row["count"]
            if row["peak_cpu"] is not None and (use.peak_cpu_percent is None or row["peak_cpu"] > use.peak_cpu_percent):
                use.average_cpu_percent = row["average_cpu"]
            use.peak_cpu_percent = _higher(use.peak_cpu_percent, row["peak_cpu"])
            peak_memory = _higher(use.peak_memory_used_mib, row["peak_memory"])
            use.peak_memory_used_mib = None if peak_memory is None else int(peak_memory)
    return list(tiers.values())


@dataclass
class HostLoad:
    host: Host
    chart: dict[str, Any]
    peak_cpu: Figure | None
    peak_memory_used_mib: Figure | None
    samples: int


def host_loads(*, hosts: Sequence[Host], since: datetime) -> list[HostLoad]:
    """Each host's CPU and memory use since ``since``, one query for all of them."""
    samples: dict[int, list[HostSample]] = {host.pk: [] for host in hosts}
    rows = HostSample.objects.filter(host__in=list(samples), sampled_at__gte=since).order_by("host_id", "sampled_at")
    for sample in rows.only("host_id", "sampled_at", "cpu_percent", "memory_mib", "memory_free_mib"):
        samples[sample.host_id].append(sample)
    return [_host_load(host, samples[host.pk]) for host in hosts]


def _host_load(host: Host, samples: list[HostSample]) -> HostLoad:
    runs = _thinned(samples, CHART_POINTS)
    used = [(sample.memory_mib - sample.memory_free_mib, sample.sampled_at) for sample in samples]
    cpu = [(sample.cpu_percent, sample.sampled_at) for sample in samples if sample.cpu_percent is not None]
    memory_share = [max(_share(s.memory_mib - s.memory_free_mib, s.memory_mib) for s in run) for run in runs]
    chart = {
        "labels": [moment_text(run[-1].sampled_at) for run in runs],
        "unit": "percent",
        "series": [
            {"label": "CPU (% of its CPUs)", "data": [_busiest(run, "cpu_percent") for run in runs]},
            {"label": "Memory used (% of its memory)", "data": memory_share},
        ],
    }
    return HostLoad(
        host=host, chart=chart, peak_cpu=_figure(cpu), peak_memory_used_mib=_figure(used), samples=len(samples)
    )


def _figure(values: Sequence[tuple[float, datetime]]) -> Figure | None:
    if not values:
        return None
    peak, peak_at = max(values, key=lambda pair: pair[0])
    return Figure(peak=peak, peak_at=peak_at, average=sum(value for value, _at in values) / len(values))

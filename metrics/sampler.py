"""The sampler: every guest's and every host's figures, read through libvirt in one call per host.

Each enabled, healthy host that is not in maintenance is asked once (``sample_metrics``) for its
totals and for the domains of the portal's instances on it (those in ``ACTIVE_STATUSES``). A host
that does not answer is logged and skipped; the others are sampled all the same. Nothing is written
while a host is being asked: the answers are gathered first, then written with one query for the
samples before and one insert per table.

Rates are worked out against the instance's sample before: counter growth over the time between.
A counter that went down (the guest booted again, or it moved to another host, where QEMU starts
afresh) starts a new run: that sample has no rates. What the host's driver does not count is written
as a zero counter with no rate (and no memory in use); vCPUs and memory it does not report are what
the portal gave the instance.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Model, OuterRef, Subquery
from django.utils import timezone

from metrics.history import prune_samples
from metrics.models import HostSample, InstanceSample
from provisioning.drivers import DriverError
from provisioning.drivers.metrics_types import DomainMetrics, MetricsSample
from provisioning.models import ACTIVE_STATUSES, Host, Instance
from provisioning.services.hosts import driver_for

logger = logging.getLogger(__name__)

_NS_PER_SECOND = 1_000_000_000
# cpu.time counts QEMU's own threads beside the vCPUs, so a guest with every vCPU busy can read a
# little over 100%: shown as 100, as the field promises.
_MAX_CPU_PERCENT = 100.0
_COUNTERS = ("cpu_time_ns", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes")
_RATES = (
    ("disk_read_bytes", "disk_read_bytes_sec"),
    ("disk_write_bytes", "disk_write_bytes_sec"),
    ("net_rx_bytes", "net_rx_bytes_sec"),
    ("net_tx_bytes", "net_tx_bytes_sec"),
)


@dataclass(frozen=True)
class HostAnswer:
    """What one host said: its totals and the figures of the instances' domains it knows."""

    host: Host
    instances: list[Instance]  # the portal's instances on it that were asked about
    sample: MetricsSample


def take_samples(*, now: datetime | None = None) -> int:
    """Sample every enabled host and the portal's domains on it; returns how many instance samples were written."""
    now = now or timezone.now()
    written = record_samples(answers=ask_hosts(), now=now)
    prune_samples(now=now)
    return written


def ask_hosts() -> list[HostAnswer]:
    """Ask every host to sample (enabled, healthy, not in maintenance) once; those that do not answer are left out."""
    return [answer for host, instances in _instances_by_host() if (answer := _ask(host, instances)) is not None]


def record_samples(*, answers: list[HostAnswer], now: datetime) -> int:
    """Write the answers as samples taken at ``now``, with rates against the samples before; returns the
    number of instance samples written."""
    instance_rows = _instance_rows(answers, now=now)
    host_rows = _host_rows(answers, now=now)
    InstanceSample.objects.bulk_create(instance_rows)
    HostSample.objects.bulk_create(host_rows)
    return len(instance_rows)


def _instances_by_host() -> list[tuple[Host, list[Instance]]]:
    hosts = list(Host.objects.filter(enabled=True, healthy=True, maintenance=False).order_by("pk"))
    by_host: dict[int, list[Instance]] = defaultdict(list)
    instances = (
        Instance.objects.filter(host__in=hosts, status__in=ACTIVE_STATUSES)
        .exclude(domain_name="")
        .only("pk", "host_id", "domain_name", "vcpus", "memory_mib")
    )
    for instance in instances:
        assert instance.host_id is not None  # filtered on host above
        by_host[instance.host_id].append(instance)
    return [(host, by_host[host.pk]) for host in hosts]


def _ask(host: Host, instances: list[Instance]) -> HostAnswer | None:
    try:
        with driver_for(host) as driver:
            sample = driver.sample_metrics(names=[instance.domain_name for instance in instances])
    except DriverError as exc:
        logger.warning("host %s: not sampled: %s", host.name, exc)
        return None
    return HostAnswer(host=host, instances=instances, sample=sample)


def _latest_instance_samples(instance_ids: list[int], *, now: datetime) -> dict[int, InstanceSample]:
    """Each instance's latest sample before ``now``, in one query (one index lookup per instance)."""
    rows = (
        InstanceSample.objects.filter(pk__in=_latest_pks(InstanceSample, Instance, "instance", instance_ids, now=now))
        .order_by()
        .only("instance_id", "host_id", "sampled_at", *_COUNTERS)
    )
    return {row.instance_id: row for row in rows}


def _latest_pks(samples: type[Model], owners: type[Model], owner_field: str, ids: list[int], *, now: datetime) -> Any:
    """A subquery: the pk of each owner's (instance's, host's) latest sample within the history, before ``now``."""
    recent = now - timedelta(seconds=settings.METRICS_HISTORY_SECONDS)
    latest = (
        samples._default_manager.filter(**{owner_field: OuterRef("pk")}, sampled_at__gte=recent, sampled_at__lt=now)
        .order_by("-sampled_at")
        .values("pk")[:1]
    )
    return owners._default_manager.filter(pk__in=ids).order_by().annotate(latest=Subquery(latest)).values("latest")


def _instance_rows(answers: list[HostAnswer], *, now: datetime) -> list[InstanceSample]:
    sampled = [
        (answer.host, instance, figures)
        for answer in answers
        for instance in answer.instances
        if (figures := answer.sample.domains.get(instance.domain_name)) is not None
    ]
    before = _latest_instance_samples([instance.pk for _host, instance, _figures in sampled], now=now)
    return [
        _instance_row(host, instance, figures, before.get(instance.pk), now=now) for host, instance, figures in sampled
    ]


def _instance_row(
    host: Host, instance: Instance, figures: DomainMetrics, before: InstanceSample | None, *, now: datetime
) -> InstanceSample:
    row = InstanceSample(
        instance=instance,
        host=host,
        sampled_at=now,
        running=figures.running,
        vcpus=figures.vcpus or instance.vcpus,
        cpu_time_ns=figures.cpu_time_ns or 0,
        disk_read_bytes=figures.disk_read_bytes or 0,
        disk_write_bytes=figures.disk_write_bytes or 0,
        net_rx_bytes=figures.net_rx_bytes or 0,
        net_tx_bytes=figures.net_tx_bytes or 0,
        memory_mib=figures.memory_mib or instance.memory_mib,
        memory_used_mib=figures.memory_used_mib,
    )
    if before is not None and _same_run(before, row):
        _set_rates(row, before, figures)
    return row


def _same_run(before: InstanceSample, row: InstanceSample) -> bool:
    if before.host_id != row.host_id or before.sampled_at >= row.sampled_at:
        return False
    return all(getattr(row, name) >= getattr(before, name) for name in _COUNTERS)


def _set_rates(row: InstanceSample, before: InstanceSample, figures: DomainMetrics) -> None:
    """The rates since ``before``, of the counters the host counts (the others stay empty, not 0)."""
    seconds = (row.sampled_at - before.sampled_at).total_seconds()
    if figures.cpu_time_ns is not None and row.vcpus:
        percent = (row.cpu_time_ns - before.cpu_time_ns) / (seconds * _NS_PER_SECOND * row.vcpus) * 100
        row.cpu_percent = round(min(percent, _MAX_CPU_PERCENT), 3)
    for counter, rate in _RATES:
        if getattr(figures, counter) is not None:
            setattr(row, rate, round((getattr(row, counter) - getattr(before, counter)) / seconds, 3))


def _latest_host_samples(host_ids: list[int], *, now: datetime) -> dict[int, HostSample]:
    rows = (
        HostSample.objects.filter(pk__in=_latest_pks(HostSample, Host, "host", host_ids, now=now))
        .order_by()
        .only("host_id", "cpu_busy_ns", "cpu_total_ns")
    )
    return {row.host_id: row for row in rows}


def _host_rows(answers: list[HostAnswer], *, now: datetime) -> list[HostSample]:
    before = _latest_host_samples([answer.host.pk for answer in answers], now=now)
    rows = []
    for answer in answers:
        totals = answer.sample.host
        row = HostSample(
            host=answer.host,
            sampled_at=now,
            cpus=totals.cpus,
            cpu_busy_ns=totals.cpu_busy_ns or 0,
            cpu_total_ns=totals.cpu_total_ns or 0,
            memory_mib=totals.memory_mib,
            memory_free_mib=totals.memory_free_mib,
            domains=sum(1 for figures in answer.sample.domains.values() if figures.running),
        )
        previous = before.get(answer.host.pk)
        if previous is not None:
            row.cpu_percent = _host_cpu_percent(previous, row)
        rows.append(row)
    return rows


def _host_cpu_percent(before: HostSample, row: HostSample) -> float | None:
    busy = row.cpu_busy_ns - before.cpu_busy_ns
    total = row.cpu_total_ns - before.cpu_total_ns
    if total <= 0 or busy < 0:
        return None  # the host rebooted (its counters started again), or it does not count
    return round(min(busy / total * 100, 100.0), 3)


__all__ = ["HostAnswer", "ask_hosts", "record_samples", "take_samples"]

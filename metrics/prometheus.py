"""``/metrics``: what guests and hosts use, and the portal's own figures, in Prometheus' formats.

The figures come from the sampler's latest rows (``metrics.sampler``), never from libvirt during a
scrape: a scrape reads the database only, in a fixed number of queries. Each guest's latest sample
is found through the (instance, sampled_at) index, one lookup per live instance, so the cost does not
grow with the history kept. A sample older than ``STALE_SAMPLES`` sampling periods is left out: the
guest is off or the sampler has stopped, and a missing series says so where a frozen one would not.

Only live things are labelled: deleted instances and stacks have no series, so the label sets stay
bounded by what runs. The collectors live in a registry of their own, not the process-wide default
one, so nothing else a library registers ends up in the answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from metrics.models import HostSample, InstanceSample
from metrics.portal_figures import PortalFigures
from metrics.scrape_access import Verdict, scrape_verdict
from provisioning.models import ACTIVE_STATUSES, Host, Instance, Status

MIB = 1024 * 1024
NS = 1e9
STALE_SAMPLES = 3
HOST_STATES = {
    "enabled": "enabled (placement may use it)",
    "healthy": "healthy (its libvirtd answered the last check)",
    "draining": "draining (keeps its stacks, takes no new ones)",
    "maintenance": "in maintenance (drained and evacuated)",
}
GUEST_LABELS = ["instance", "domain", "stack", "project", "host", "tier"]


def _fresh_since(now: datetime) -> datetime:
    return now - STALE_SAMPLES * timedelta(seconds=settings.METRICS_SAMPLE_SECONDS)


def latest_instance_samples(*, now: datetime) -> list[InstanceSample]:
    """The newest sample of every live instance, if fresh and of a running guest (one query)."""
    newest = InstanceSample.objects.filter(instance=OuterRef("pk")).order_by("-sampled_at", "-id").values("pk")[:1]
    live = (
        Instance.objects.filter(status__in=ACTIVE_STATUSES)
        .exclude(stack__status=Status.DELETED)
        .order_by()
        .annotate(newest=Subquery(newest))
        .values("newest")
    )
    return list(
        InstanceSample.objects.filter(pk__in=live, sampled_at__gte=_fresh_since(now), running=True)
        .select_related("instance__stack__project", "instance__host", "host")
        .order_by("instance_id")
    )


def latest_host_samples(*, now: datetime) -> dict[int, HostSample]:
    newest = HostSample.objects.filter(host=OuterRef("pk")).order_by("-sampled_at", "-id").values("pk")[:1]
    hosts = Host.objects.order_by().annotate(newest=Subquery(newest)).values("newest")
    fresh = HostSample.objects.filter(pk__in=hosts, sampled_at__gte=_fresh_since(now))
    return {sample.host_id: sample for sample in fresh}


class GuestFigures(Collector):
    """Per guest: CPU time, memory, disk and network counters, vCPUs, from the latest sample."""

    def collect(self) -> Iterator[Metric]:
        def counter(name: str, documentation: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, documentation, labels=GUEST_LABELS)

        def gauge(name: str, documentation: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, labels=GUEST_LABELS)

        cpu = counter("portal_guest_cpu_seconds", "CPU time the guest used, all its vCPUs, since it started")
        read = counter("portal_guest_disk_read_bytes", "Bytes the guest read from its disks since it started")
        written = counter("portal_guest_disk_written_bytes", "Bytes the guest wrote to its disks since it started")
        received = counter("portal_guest_network_receive_bytes", "Bytes the guest received since it started")
        sent = counter("portal_guest_network_transmit_bytes", "Bytes the guest sent since it started")
        vcpus = gauge("portal_guest_vcpus", "Virtual CPUs the guest has")
        memory = gauge("portal_guest_memory_bytes", "Memory the guest was given")
        used = gauge("portal_guest_memory_used_bytes", "Memory the guest uses (its balloon's figure, else QEMU's)")
        stamp = gauge("portal_guest_sample_timestamp_seconds", "When the figures were read from libvirt (Unix time)")
        for sample in latest_instance_samples(now=timezone.now()):
            labels = guest_labels(sample)
            cpu.add_metric(labels, sample.cpu_time_ns / NS)
            read.add_metric(labels, float(sample.disk_read_bytes))
            written.add_metric(labels, float(sample.disk_write_bytes))
            received.add_metric(labels, float(sample.net_rx_bytes))
            sent.add_metric(labels, float(sample.net_tx_bytes))
            vcpus.add_metric(labels, float(sample.vcpus))
            memory.add_metric(labels, float(sample.memory_mib * MIB))
            if sample.memory_used_mib is not None:
                used.add_metric(labels, float(sample.memory_used_mib * MIB))
            stamp.add_metric(labels, sample.sampled_at.timestamp())
        yield from (cpu, read, written, received, sent, vcpus, memory, used, stamp)


def guest_labels(sample: InstanceSample) -> list[str]:
    instance = sample.instance
    stack = instance.stack
    host = sample.host or instance.host
    return [
        instance.name,
        instance.domain_name,
        stack.name,
        stack.project.name,
        host.name if host else "",
        instance.role,
    ]


class HostFigures(Collector):
    """Per host: the latest sample's totals, and what placement has handed out of what it may."""

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, documentation: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, labels=["host"])

        busy = CounterMetricFamily("portal_host_cpu_busy_seconds", "CPU time not idle, all CPUs", labels=["host"])
        cpus = gauge("portal_host_cpus", "Physical CPUs")
        memory = gauge("portal_host_memory_bytes", "Physical memory")
        free = gauge("portal_host_memory_free_bytes", "Free memory")
        domains = gauge("portal_host_domains", "The portal's guests running on the host")
        load = gauge("portal_host_load1", "Load average over one minute")
        vcpus = gauge("portal_host_allocated_vcpus", "Virtual CPUs placement has handed out")
        vcpu_capacity = gauge("portal_host_vcpu_capacity", "Virtual CPUs placement may hand out (with overcommit)")
        allocated = gauge("portal_host_allocated_memory_bytes", "Memory placement has handed out")
        capacity = gauge(
            "portal_host_memory_capacity_bytes", "Memory placement may hand out (less the reserve, with overcommit)"
        )
        instances = gauge("portal_host_allocated_instances", "Instances placed on the host")
        states = {
            state: gauge(f"portal_host_{state}", f"1 if the host is {words}, else 0")
            for state, words in HOST_STATES.items()
        }
        samples = latest_host_samples(now=timezone.now())
        for host in Host.objects.order_by("name"):
            labels = [host.name]
            vcpus.add_metric(labels, float(host.allocated_vcpus))
            vcpu_capacity.add_metric(labels, float(host.vcpu_capacity))
            allocated.add_metric(labels, float(host.allocated_memory_mib * MIB))
            capacity.add_metric(labels, float(int(host.memory_capacity_mib * host.memory_overcommit) * MIB))
            instances.add_metric(labels, float(host.allocated_instances))
            for state, family in states.items():
                family.add_metric(labels, 1.0 if getattr(host, state) else 0.0)
            sample = samples.get(host.pk)
            if sample is None:
                continue
            busy.add_metric(labels, sample.cpu_busy_ns / NS)
            cpus.add_metric(labels, float(sample.cpus))
            memory.add_metric(labels, float(sample.memory_mib * MIB))
            free.add_metric(labels, float(sample.memory_free_mib * MIB))
            domains.add_metric(labels, float(sample.domains))
            if sample.load_1m is not None:
                load.add_metric(labels, sample.load_1m)
        yield from (busy, cpus, memory, free, domains, load, vcpus, vcpu_capacity, allocated, capacity, instances)
        yield from states.values()


def portal_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in (GuestFigures(), HostFigures(), PortalFigures()):
        registry.register(collector)
    return registry


REGISTRY = portal_registry()


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The figures in the format the scraper asks for (OpenMetrics or Prometheus' text format)."""
    verdict = scrape_verdict(request)
    if verdict is Verdict.CHALLENGE:
        response = HttpResponse("A bearer token is needed.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if verdict is Verdict.REFUSED:
        return HttpResponse("Not allowed.\n", status=403, content_type="text/plain")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(REGISTRY), content_type=content_type)

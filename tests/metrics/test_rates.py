"""Rates between two samples, worked out by the sampler from what hosts answered (answers made here, as a
host whose driver counts everything would give them)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.models import HostSample, InstanceSample
from metrics.sampler import HostAnswer, record_samples
from provisioning.drivers.metrics_types import DomainMetrics, HostMetrics, MetricsSample
from tests.factories import HostFactory
from tests.metrics.conftest import make_instance, make_stack

pytestmark = pytest.mark.django_db

GIB = 1024**3
START = DomainMetrics(
    running=True,
    vcpus=2,
    cpu_time_ns=50 * 10**9,
    memory_mib=1024,
    memory_used_mib=300,
    disk_read_bytes=GIB,
    disk_write_bytes=2 * GIB,
    net_rx_bytes=1000,
    net_tx_bytes=2000,
)
HOST = HostMetrics(
    cpus=8, cpu_busy_ns=10**12, cpu_total_ns=4 * 10**12, memory_mib=16384, memory_free_mib=8000, domains_running=1
)


@pytest.fixture
def web(project):
    host = HostFactory(name="counting", uri="test:///counting")
    return make_instance(make_stack(project), host, "web-1")


def record(instance, figures: DomainMetrics, *, at, host_figures: HostMetrics = HOST, host=None) -> InstanceSample:
    answer = HostAnswer(
        host=host or instance.host,
        instances=[instance],
        sample=MetricsSample(host=host_figures, domains={instance.domain_name: figures}),
    )
    record_samples(answers=[answer], now=at)
    return InstanceSample.objects.get(instance=instance, sampled_at=at)


def test_a_first_sample_has_counters_but_no_rates(web):
    sample = record(web, START, at=timezone.now())
    assert (sample.cpu_time_ns, sample.disk_write_bytes, sample.memory_used_mib) == (50 * 10**9, 2 * GIB, 300)
    assert sample.cpu_percent is None
    assert sample.disk_read_bytes_sec is None


def test_rates_are_counter_growth_over_the_time_between(web):
    now = timezone.now()
    record(web, START, at=now)
    later = replace(
        START,
        cpu_time_ns=START.cpu_time_ns + 60 * 10**9,  # one of two vCPUs busy for the minute
        disk_read_bytes=START.disk_read_bytes + 6000,
        disk_write_bytes=START.disk_write_bytes + 60 * 1024**2,
        net_rx_bytes=START.net_rx_bytes + 120,
        net_tx_bytes=START.net_tx_bytes,
    )
    sample = record(web, later, at=now + timedelta(minutes=1))
    assert sample.cpu_percent == pytest.approx(50.0)
    assert sample.disk_read_bytes_sec == pytest.approx(100.0)
    assert sample.disk_write_bytes_sec == pytest.approx(1024**2)
    assert sample.net_rx_bytes_sec == pytest.approx(2.0)
    assert sample.net_tx_bytes_sec == 0


def test_cpu_beyond_every_vcpu_reads_as_full(web):
    now = timezone.now()
    record(web, START, at=now)
    busier = replace(START, cpu_time_ns=START.cpu_time_ns + 130 * 10**9)  # QEMU's threads beside two busy vCPUs
    assert record(web, busier, at=now + timedelta(minutes=1)).cpu_percent == 100.0


@pytest.mark.parametrize("counter", ["cpu_time_ns", "disk_read_bytes", "net_tx_bytes"])
def test_a_counter_that_went_down_starts_a_new_run(web, counter):
    now = timezone.now()
    record(web, START, at=now)
    rebooted = replace(START, **{counter: 0})
    sample = record(web, rebooted, at=now + timedelta(minutes=1))
    assert sample.cpu_percent is None
    assert sample.disk_read_bytes_sec is None
    # The next sample compares with the new run's first one.
    grown = replace(rebooted, **{counter: 600})
    after = record(web, grown, at=now + timedelta(minutes=2))
    assert after.cpu_percent is not None
    assert after.net_tx_bytes_sec is not None


def test_a_move_to_another_host_starts_a_new_run(web):
    now = timezone.now()
    record(web, START, at=now)
    grown = replace(START, cpu_time_ns=START.cpu_time_ns + 10**9)
    elsewhere = HostFactory(name="elsewhere", uri="test:///elsewhere")
    assert record(web, grown, at=now + timedelta(minutes=1), host=elsewhere).cpu_percent is None


def test_vcpus_reported_by_the_host_are_what_rates_divide_by(web):
    now = timezone.now()
    record(web, replace(START, vcpus=4), at=now)
    later = replace(START, vcpus=4, cpu_time_ns=START.cpu_time_ns + 60 * 10**9)
    assert record(web, later, at=now + timedelta(minutes=1)).cpu_percent == pytest.approx(25.0)


def test_host_cpu_percent_is_busy_over_total_since_the_sample_before(web):
    now = timezone.now()
    record(web, START, at=now)
    busier = replace(HOST, cpu_busy_ns=HOST.cpu_busy_ns + 3 * 10**9, cpu_total_ns=HOST.cpu_total_ns + 12 * 10**9)
    record(web, START, at=now + timedelta(minutes=1), host_figures=busier)
    latest = HostSample.objects.latest("sampled_at")
    assert latest.cpu_percent == pytest.approx(25.0)
    assert (latest.memory_free_mib, latest.domains) == (8000, 1)
    # A host whose counters started again (it rebooted) has no rate on its next sample.
    record(web, START, at=now + timedelta(minutes=2), host_figures=HOST)
    assert HostSample.objects.latest("sampled_at").cpu_percent is None


def test_each_instance_is_compared_with_its_own_sample_before(project):
    host = HostFactory(name="many", uri="test:///many")
    stack = make_stack(project)
    instances = [make_instance(stack, host, f"vm-{n}") for n in range(5)]
    now = timezone.now()
    for minute, extra in ((0, 0), (1, 1)):
        answer = HostAnswer(
            host=host,
            instances=instances,
            sample=MetricsSample(
                host=HOST,
                domains={
                    instance.domain_name: replace(START, cpu_time_ns=START.cpu_time_ns + extra * n * 12 * 10**9)
                    for n, instance in enumerate(instances)
                },
            ),
        )
        record_samples(answers=[answer], now=now + timedelta(minutes=minute))
    latest = InstanceSample.objects.filter(sampled_at=now + timedelta(minutes=1)).order_by("instance_id")
    assert [sample.cpu_percent for sample in latest] == pytest.approx([0, 10, 20, 30, 40])

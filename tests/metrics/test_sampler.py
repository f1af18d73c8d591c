"""The sampler on libvirt's test driver: two hosts and one that does not answer, what is sampled and what
is not, and the samples' upkeep (pruning, the schedule). The test driver keeps only its domains' state,
so counters it does not keep have no rates; the arithmetic of rates is in test_rates.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from metrics.history import prune_samples
from metrics.models import HostSample, InstanceSample
from metrics.sampler import take_samples
from provisioning.models import Status
from tests.factories import HostFactory
from tests.metrics.conftest import make_instance, make_stack
from tests.migration_steps import run_data_migration

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(project, default_host, node_host):
    """Instances on both test hosts, and one on a host that does not answer."""
    stack = make_stack(project)
    unreachable = HostFactory(name="gone", uri="qemu+tcp://127.0.0.1:9/system")
    return {
        "default-a": make_instance(stack, default_host, "default-a"),
        "default-b": make_instance(stack, default_host, "default-b", vcpus=4, memory_mib=512),
        "node-a": make_instance(stack, node_host, "node-a"),
        "node-b": make_instance(stack, node_host, "node-b", status=Status.STOPPED),
        "lost": make_instance(stack, unreachable, "lost"),
    }


def test_every_answering_host_is_sampled_and_an_unreachable_one_is_skipped(shop, caplog):
    written = take_samples()
    assert written == 4
    sampled = set(InstanceSample.objects.values_list("instance__domain_name", flat=True))
    assert sampled == {"default-a", "default-b", "node-a", "node-b"}
    assert set(HostSample.objects.values_list("host__name", flat=True)) == {"test-host", "node-host"}
    assert "host gone: not sampled" in caplog.text


def test_what_the_host_does_not_report_comes_from_the_instance_and_has_no_rates(shop):
    first = timezone.now()
    take_samples(now=first)
    take_samples(now=first + timedelta(minutes=1))
    latest = InstanceSample.objects.filter(instance=shop["default-b"]).latest("sampled_at")
    assert latest.running
    assert (latest.vcpus, latest.memory_mib) == (4, 512)  # what the portal gave it: the test driver does not say
    assert latest.memory_used_mib is None
    assert latest.cpu_time_ns == 0
    # Nothing counted is not "nothing happened": no rate rather than a zero one.
    assert latest.cpu_percent is None
    assert latest.disk_read_bytes_sec is None
    assert latest.net_tx_bytes_sec is None


def test_host_totals_are_sampled(shop):
    take_samples()
    host = HostSample.objects.get(host__name="node-host")
    assert host.cpus == 8
    assert host.memory_mib == 8192
    assert host.cpu_total_ns >= host.cpu_busy_ns > 0
    assert host.domains == 2  # both node domains run (whatever the portal thinks of one of them)


def test_instances_not_on_a_sampled_host_or_not_active_are_left_out(project, default_host, node_host):
    stack = make_stack(project)
    make_instance(stack, default_host, "default-a", status=Status.DELETED)
    make_instance(stack, default_host, "unknown-to-the-host")
    make_instance(stack, None, "nowhere")
    HostFactory(name="off", uri="test:///default?x", enabled=False)
    maintained = HostFactory(name="maintained", uri="test:///default?y", maintenance=True)
    make_instance(stack, maintained, "default-b")
    assert take_samples() == 0
    assert set(HostSample.objects.values_list("host__name", flat=True)) == {"test-host", "node-host"}


def test_the_previous_samples_are_read_in_one_query(shop, django_assert_max_num_queries):
    take_samples(now=timezone.now() - timedelta(minutes=1))
    # Hosts, instances, previous instance samples, previous host samples, two inserts, two prunes:
    # the same count whatever the number of instances.
    with django_assert_max_num_queries(8):
        take_samples()


def test_samples_older_than_the_history_are_pruned(shop, settings):
    settings.METRICS_HISTORY_SECONDS = 3600
    now = timezone.now()
    take_samples(now=now - timedelta(hours=2))
    take_samples(now=now - timedelta(minutes=30))
    take_samples(now=now)
    moments = set(InstanceSample.objects.values_list("sampled_at", flat=True))
    assert moments == {now - timedelta(minutes=30), now}
    assert not HostSample.objects.filter(sampled_at__lt=now - timedelta(hours=1)).exists()
    assert prune_samples(now=now) == 0


def test_the_schedule_samples_on_the_control_cluster(settings):
    settings.METRICS_SAMPLE_SECONDS = 120
    run_data_migration("metrics.migrations.0002_sample_metrics_schedule")
    schedule = Schedule.objects.get(name="sample-metrics")
    assert schedule.func == "metrics.tasks.sample_metrics"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 2, -1)
    assert schedule.cluster is None  # the default cluster: control (portal.task_queues)


def test_the_task_takes_samples(shop):
    from metrics.tasks import sample_metrics

    assert sample_metrics() == 4

"""``/metrics`` read as a scraper reads it: parsed by prometheus_client's own parsers."""

from __future__ import annotations

from datetime import timedelta

import prometheus_client
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from metrics.prometheus import REGISTRY
from provisioning.models import Status
from tests.metrics_exposition.conftest import MIB, host_sample, instance_sample

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


def series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def of(figures: dict, name: str, **labels: str) -> float:
    matching = [value for (n, ls), value in figures.items() if n == name and labels.items() <= dict(ls).items()]
    assert len(matching) == 1, (name, labels, matching)
    return matching[0]


def names(figures: dict) -> set[str]:
    return {name for name, _labels in figures}


def test_each_live_guest_has_its_latest_figures_under_its_names(client, guest, project):
    web = guest("shop", "web")
    instance_sample(web, at=timezone.now() - timedelta(seconds=30), cpu_s=5)
    instance_sample(web, cpu_s=12.5, disk_read_bytes=7 * MIB, net_tx_bytes=99)

    figures = series(scrape(client))

    labels = {
        "instance": "shop-web",
        "domain": web.domain_name,
        "stack": "shop",
        "project": project.name,
        "host": "kvm-1",
        "tier": "web",
    }
    assert of(figures, "portal_guest_cpu_seconds_total", **labels) == 12.5  # the newest sample, not the older
    assert of(figures, "portal_guest_disk_read_bytes_total", **labels) == 7 * MIB
    assert of(figures, "portal_guest_disk_written_bytes_total", **labels) == 2000
    assert of(figures, "portal_guest_network_receive_bytes_total", **labels) == 3000
    assert of(figures, "portal_guest_network_transmit_bytes_total", **labels) == 99
    assert of(figures, "portal_guest_vcpus", **labels) == 2
    assert of(figures, "portal_guest_memory_bytes", **labels) == 1024 * MIB
    assert of(figures, "portal_guest_memory_used_bytes", **labels) == 300 * MIB


def test_deleted_stale_and_stopped_guests_have_no_series(client, guest, settings):
    settings.METRICS_SAMPLE_SECONDS = 60
    live = guest("live")
    deleted = guest("gone", status=Status.DELETED)
    old = guest("old")
    stopped = guest("stopped")
    for instance in (live, deleted):
        instance_sample(instance)
    instance_sample(old, at=timezone.now() - timedelta(minutes=10))  # the sampler has not seen it since
    instance_sample(stopped, running=False)

    figures = series(scrape(client))

    stacks = {dict(labels)["stack"] for name, labels in figures if name == "portal_guest_cpu_seconds_total"}
    assert stacks == {"live"}
    assert not any(deleted.domain_name in str(labels) for _name, labels in figures)


def test_two_stacks_of_one_name_are_two_series(client, guest):
    """Stack names are not unique: the libvirt domain tells them apart, so no scrape has duplicate samples."""
    first, second = guest("twin"), guest("twin")
    instance_sample(first, cpu_s=1)
    instance_sample(second, cpu_s=2)

    figures = series(scrape(client))

    values = sorted(value for (name, _labels), value in figures.items() if name == "portal_guest_cpu_seconds_total")
    assert values == [1.0, 2.0]


def test_hosts_show_their_sample_allocation_and_state(client, host):
    host.draining = True
    host.memory_overcommit = 1.5
    host.save()
    host_sample(host, busy_s=250)

    figures = series(scrape(client))

    assert of(figures, "portal_host_cpu_busy_seconds_total", host="kvm-1") == 250
    assert of(figures, "portal_host_cpus", host="kvm-1") == 8
    assert of(figures, "portal_host_memory_bytes", host="kvm-1") == 32768 * MIB
    assert of(figures, "portal_host_memory_free_bytes", host="kvm-1") == 20000 * MIB
    assert of(figures, "portal_host_domains", host="kvm-1") == 2
    assert of(figures, "portal_host_allocated_vcpus", host="kvm-1") == 6
    assert of(figures, "portal_host_vcpu_capacity", host="kvm-1") == 8 * 4  # default CPU overcommit 4
    assert of(figures, "portal_host_allocated_memory_bytes", host="kvm-1") == 4096 * MIB
    assert of(figures, "portal_host_memory_capacity_bytes", host="kvm-1") == int((32768 - 512) * 1.5) * MIB
    assert [of(figures, f"portal_host_{state}", host="kvm-1") for state in ("enabled", "healthy", "draining")] == [
        1,
        1,
        1,
    ]
    assert of(figures, "portal_host_maintenance", host="kvm-1") == 0


def test_a_host_never_sampled_still_shows_its_allocation(client, host):
    figures = series(scrape(client))

    assert of(figures, "portal_host_allocated_vcpus", host="kvm-1") == 6
    assert "portal_host_cpu_busy_seconds_total" not in names(figures)


def test_every_family_has_help_and_the_portal_prefix(client, guest, host):
    instance_sample(guest("shop"))
    host_sample(host)
    text = scrape(client)

    families = list(text_string_to_metric_families(text))
    assert len(families) > 20
    for family in families:
        assert family.name.startswith("portal_"), family.name
        assert family.documentation, family.name
    assert "# TYPE portal_guest_cpu_seconds_total counter" in text
    assert "# TYPE portal_stack_launch_seconds histogram" in text


def test_openmetrics_is_answered_when_the_scraper_asks_for_it(client, guest):
    instance_sample(guest("shop"), cpu_s=3)

    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text;version=1.0.0,text/plain;q=0.5")

    assert response["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(response.content.decode())}
    assert families["portal_guest_cpu_seconds"].type == "counter"
    assert families["portal_stack_launch_seconds"].type == "gaugehistogram"


def test_the_registry_is_the_portals_own(client):
    text = scrape(client)

    assert "process_cpu_seconds_total" not in text  # the default registry's collectors are not in it
    assert "python_info" not in text
    assert REGISTRY is not prometheus_client.REGISTRY


def test_a_scrape_costs_the_same_queries_however_many_samples_are_kept(client, guest, host):
    def queries_of_a_scrape() -> int:
        with CaptureQueriesContext(connection) as context:
            scrape(client)
        return len(context)

    instance_sample(guest("one"))
    host_sample(host)
    few = queries_of_a_scrape()

    start = timezone.now() - timedelta(minutes=2)
    for index in range(6):
        instance = guest(f"more-{index}")
        for step in range(20):
            instance_sample(instance, at=start + timedelta(seconds=5 * step), cpu_s=step)
        host_sample(host, at=start + timedelta(seconds=5 * index))
    many = queries_of_a_scrape()

    assert many == few
    assert many <= 16

"""The stack page's usage card (peaks per tier, a flavor suggestion) and the Hosts page's load charts."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metrics.models import InstanceSample
from provisioning.models import Flavor
from tests.metrics_pages.conftest import a_day_of_samples, host_samples, instance_of, signed_in


def queries_for(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


def tier_card(html: str, number: int) -> str:
    found = re.search(rf'<li class="mb-2" id="tier-usage-{number}"(.*?)</li>', html, re.S)
    assert found, f"no usage line for tier {number}"
    return found.group(1)


@pytest.fixture
def every_five_minutes(settings):
    """Samples five minutes apart, as the sampler would take them with this setting: fewer rows to write."""
    settings.METRICS_SAMPLE_SECONDS = 300
    return 300


@pytest.fixture
def flavors(project, other_project):
    Flavor.objects.create(name="tiny", vcpus=1, memory_mib=1024, disk_gib=10)
    Flavor.objects.create(name="small", vcpus=2, memory_mib=2048, disk_gib=20)
    Flavor.objects.create(name="big", vcpus=8, memory_mib=8192, disk_gib=40, project=project)
    # Another project's flavor would fit best, and is never offered.
    Flavor.objects.create(name="theirs", vcpus=4, memory_mib=4096, disk_gib=20, project=other_project)


def test_each_tier_says_its_peaks_and_what_flavor_would_fit(member, stack, flavors, every_five_minutes):
    a_day_of_samples(instance_of(stack, "web"), cpu=12.0, memory_used=600, every=300)  # quiet
    a_day_of_samples(instance_of(stack, "app"), cpu=45.0, memory_used=3000, every=300)  # fits
    a_day_of_samples(instance_of(stack, "db"), cpu=95.0, memory_used=6000, every=300, hours=4)  # busy, but new
    html = signed_in(member).get(f"/stacks/{stack.pk}/").content.decode()
    web, app, db = (tier_card(html, n) for n in (1, 2, 3))
    assert 'data-verdict="smaller"' in web
    assert "Suggested: a smaller flavor, tiny (1 vCPU, 1024 MiB, 10 GiB)." in web
    assert "Peak 12% of 2 vCPUs over 1 day" in web
    assert 'href="#resize"' in web
    assert f'href="/instances/{instance_of(stack, "web").pk}/"' in web
    assert 'data-verdict="keep"' in app
    assert "the size fits what it uses" in app
    assert 'href="#resize"' not in app
    assert 'data-verdict="wait"' in db
    assert "Too few samples to judge (watched for 4 hours): another 8 hours of samples are needed." in db


def test_a_busy_tier_is_offered_the_projects_own_bigger_flavor_and_never_anothers(
    member, stack, flavors, every_five_minutes
):
    a_day_of_samples(instance_of(stack, "app"), cpu=90.0, memory_used=2000, every=300)
    html = signed_in(member).get(f"/stacks/{stack.pk}/").content.decode()
    app = tier_card(html, 2)
    assert "Suggested: a bigger flavor, big (8 vCPU, 8192 MiB, 40 GiB)." in app
    assert "theirs" not in html


def test_no_samples_at_all_says_so_per_tier(member, stack):
    html = signed_in(member).get(f"/stacks/{stack.pk}/").content.decode()
    assert html.count("Too few samples to judge (no samples yet)") == 3


@pytest.mark.parametrize("status", ["pending", "building", "deleting", "deleted"])
def test_a_stack_not_yet_built_or_going_away_has_no_usage_card(member, stack, status):
    stack.status = status
    stack.save(update_fields=["status"])
    assert 'id="usage-heading"' not in signed_in(member).get(f"/stacks/{stack.pk}/").content.decode()


def test_the_stack_page_costs_the_same_queries_with_a_day_of_samples(member, stack, flavors):
    client = signed_in(member)
    none, _html = queries_for(client, f"/stacks/{stack.pk}/")
    for role in ("web", "app", "db"):
        a_day_of_samples(instance_of(stack, role), cpu=30.0, memory_used=1000)
    assert InstanceSample.objects.count() == 3 * 1440
    full, html = queries_for(client, f"/stacks/{stack.pk}/")
    assert full == none
    assert html.count("the size fits what it uses") == 3


def test_the_hosts_page_draws_each_hosts_load(operator, host):
    from tests.factories import HostFactory

    quiet = HostFactory(name="hv-quiet", uri="test:///quiet")
    host_samples(host, hours=7, every=120, cpu=25.0, free_mib=8192)
    client = signed_in(operator)
    count, html = queries_for(client, "/hosts/")
    assert "Load over the last 6 hours" in html
    row = re.search(rf'id="host-load-row-{host.pk}">(.*?)</dl>', html, re.S).group(1)
    assert "peak 25% of 8 CPUs" in row
    assert "peak 24576 MiB of 32768 MiB" in row
    assert 'role="img"' in row
    quiet_row = re.search(rf'id="host-load-row-{quiet.pk}">(.*?)</div>', html, re.S).group(1)
    assert "No samples in the last 6 hours." in quiet_row
    island = json.loads(
        re.search(r'<script id="host-load-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    chart = island[f"host-load-{host.pk}"]
    assert len(chart["labels"]) == 180
    assert chart["series"][0]["data"][0] == 25.0
    assert chart["series"][1]["data"][0] == 75.0  # 24576 of 32768 MiB
    assert f"host-load-{quiet.pk}" not in island
    host_samples(quiet, hours=6, every=60)
    assert queries_for(client, "/hosts/")[0] == count

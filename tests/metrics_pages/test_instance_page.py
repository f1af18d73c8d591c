"""An instance's page: who may see it, the windows, the figures beside the charts, the charts' data."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from tests.metrics_pages.conftest import instance_of, signed_in


def url(instance, window: str = "") -> str:
    return f"/instances/{instance.pk}/" + (f"?window={window}" if window else "")


def charts_island(html: str) -> dict:
    found = re.search(r'<script id="usage-charts-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no data island"
    return json.loads(found.group(1))


@pytest.fixture
def web(stack):
    return instance_of(stack, "web")


# Who may see it.


def test_strangers_sign_in_first_and_outsiders_get_404(client, outsider, web, sample):
    sample(web, ago=timedelta(minutes=5), cpu=12.0)
    response = client.get(url(web))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    response = signed_in(outsider).get(url(web))
    assert response.status_code == 404
    assert b"shop-web" not in response.content


def test_a_missing_instance_is_404_like_another_projects(member):
    assert signed_in(member).get("/instances/999999/").status_code == 404


@pytest.mark.parametrize("who", ["owner", "member", "viewer", "operator"])
def test_members_of_the_project_and_operators_see_it(request, who, web, sample):
    sample(web, ago=timedelta(minutes=5), cpu=12.0)
    response = signed_in(request.getfixturevalue(who)).get(url(web))
    assert response.status_code == 200
    html = response.content.decode()
    assert "shop-web" in html
    assert f'href="/stacks/{web.stack_id}/"' in html
    assert "hv-1" in html
    assert "2 vCPUs, 2048 MiB, 10 GiB" in html


# Windows.


def test_each_window_counts_its_own_samples(member, web, sample):
    sample(web, ago=timedelta(minutes=10), cpu=10.0)
    sample(web, ago=timedelta(hours=3), cpu=50.0)
    sample(web, ago=timedelta(hours=20), cpu=90.0)
    client = signed_in(member)
    for window, count, peak in (("1h", 1, 10), ("6h", 2, 50), ("24h", 3, 90)):
        html = client.get(url(web, window)).content.decode()
        assert f"{count} sample" in html
        assert f"{peak}% of 2 vCPUs" in html
        assert f'id="window-{window}" href="?window={window}" aria-current="page"' in html


def test_an_unknown_window_is_the_last_hour(member, web, sample):
    sample(web, ago=timedelta(minutes=10), cpu=10.0)
    sample(web, ago=timedelta(hours=3), cpu=50.0)
    html = signed_in(member).get(url(web, "forever")).content.decode()
    assert "1 sample," in html
    assert 'id="window-1h" href="?window=1h" aria-current="page"' in html
    assert "1 hour back" in html


# No data.


def test_no_samples_yet_says_when_the_first_is_expected(member, web, settings):
    settings.METRICS_SAMPLE_SECONDS = 60
    html = signed_in(member).get(url(web)).content.decode()
    assert re.search(r"No samples yet: one is taken every 1 minute, so the first is expected by <time datetime=", html)
    assert "<canvas" not in html
    assert "usage-charts-data" not in html


def test_samples_outside_the_window_say_when_the_last_one_was(member, web, sample):
    sample(web, ago=timedelta(hours=3), cpu=50.0)
    html = signed_in(member).get(url(web)).content.decode()
    assert "No samples in this window: the last one was taken <time datetime=" in html


def test_a_stopped_instance_without_samples_says_they_come_while_it_runs(member, web):
    web.status = "stopped"
    web.save(update_fields=["status"])
    html = signed_in(member).get(url(web)).content.decode()
    assert "they are taken every" in html
    assert "while the instance runs" in html


# Figures beside the charts, and the charts' data.


def test_peaks_and_averages_are_written_beside_the_charts(member, web, sample):
    sample(web, ago=timedelta(minutes=30), cpu=None, memory_used=500)  # a run's first sample: no rates
    sample(web, ago=timedelta(minutes=20), cpu=10.0, memory_used=700, disk_read=1024.0, disk_write=0.0, net_rx=2048.0)
    sample(web, ago=timedelta(minutes=10), cpu=30.0, memory_used=900, disk_read=3 * 1024**2, net_rx=0.0, net_tx=10.0)
    html = signed_in(member).get(url(web)).content.decode()
    cpu = re.search(r'<dl class="col-md-4 mb-0" id="figures-cpu">(.*?)</dl>', html, re.S).group(1)
    assert "30% of 2 vCPUs, <time" in cpu
    assert "<dt>Average</dt><dd>20%</dd>" in cpu
    memory = re.search(r'id="figures-memory">(.*?)</dl>', html, re.S).group(1)
    assert "900 MiB of 2048 MiB, <time" in memory
    assert "<dt>Average</dt><dd>700 MiB</dd>" in memory
    disk = re.search(r'id="figures-disk">(.*?)</dl>', html, re.S).group(1)
    assert "peak 3.0\xa0MB/s" in disk
    assert "average 1.5\xa0MB/s" in disk
    assert "<dt>Writes</dt><dd>peak 0\xa0bytes/s" in disk
    network = re.search(r'id="figures-network">(.*?)</dl>', html, re.S).group(1)
    assert "peak 2.0\xa0KB/s" in network
    assert "average 1.0\xa0KB/s" in network
    assert "<dt>Out</dt><dd>peak 10\xa0bytes/s" in network


def test_the_charts_are_canvases_with_words_and_their_data_an_island(member, web, sample):
    sample(web, ago=timedelta(minutes=20), cpu=10.0, memory_used=700)
    sample(web, ago=timedelta(minutes=10), cpu=30.0, memory_used=900, disk_read=5.0)
    html = signed_in(member).get(url(web)).content.decode()
    canvases = re.findall(r"<canvas [^>]*>", html)
    assert len(canvases) == 4
    for canvas in canvases:
        assert 'role="img"' in canvas
        assert re.search(r'aria-label="[^"]{20,}"', canvas)
    data = charts_island(html)
    assert len(data["labels"]) == 2
    assert data["cpu"]["series"][0]["data"] == [10.0, 30.0]
    assert [s["data"] for s in data["memory"]["series"]] == [[700, 900], [2048, 2048]]
    assert data["disk"]["series"][0]["data"] == [None, 5.0]
    # No inline script: every script is a file, or the data island.
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


def test_a_long_window_is_thinned_for_the_chart_but_keeps_its_peak(member, web):
    from tests.metrics_pages.conftest import a_day_of_samples

    a_day_of_samples(web, cpu=5.0, memory_used=600, every=20)
    web.samples.filter(pk=web.samples.order_by("-sampled_at").values("pk")[100:101]).update(cpu_percent=97.0)
    html = signed_in(member).get(url(web, "24h")).content.decode()
    data = charts_island(html)
    assert len(data["labels"]) <= 360
    assert max(data["cpu"]["series"][0]["data"]) == 97.0
    assert "97% of 2 vCPUs" in html

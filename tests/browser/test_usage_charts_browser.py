"""What guests and hosts used, in a real browser at phone and desktop widths: an instance's four charts
and the Hosts page's load chart are drawn (each canvas has a size), the pages fit the window, pass the
accessibility checks and run no failing script."""

from __future__ import annotations

import pytest

from tests.browser_pages import inspect_page, new_page, sign_in
from tests.metrics_pages.conftest import a_day_of_samples, a_host, host_samples, instance_of, three_tier_stack

pytestmark = [pytest.mark.xdist_group("browser-usage-charts")]

DRAWN = """(ids) => ids.map((id) => {
  const canvas = document.getElementById(id);
  const chart = canvas && Chart.getChart(canvas);
  return {id, width: canvas ? canvas.clientWidth : 0, height: canvas ? canvas.clientHeight : 0,
          points: chart ? chart.data.labels.length : 0, lines: chart ? chart.data.datasets.length : 0};
})"""


@pytest.fixture
def host(transactional_db):
    return a_host()


@pytest.fixture
def stack(project, member, host):
    return three_tier_stack(project=project, member=member, host=host)


@pytest.fixture
def sampled_stack(stack):
    web = instance_of(stack, "web")
    a_day_of_samples(web, cpu=20.0, memory_used=900, every=60, hours=2)
    web.samples.update(
        disk_read_bytes_sec=4096.0, disk_write_bytes_sec=1024.0, net_rx_bytes_sec=300.0, net_tx_bytes_sec=90.0
    )
    return stack


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_an_instances_four_charts_are_drawn(chromium, live_portal, member, sampled_stack, width):
    web = instance_of(sampled_stack, "web")
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/instances/{web.pk}/?window=6h")
    inspect_page(page, "instance-usage", width)
    drawn = page.evaluate(DRAWN, ["usage-cpu", "usage-memory", "usage-disk", "usage-network"])
    for chart in drawn:
        assert chart["width"] > 200, chart
        assert chart["height"] > 100, chart
        assert chart["points"] == 120, chart
    assert [chart["lines"] for chart in drawn] == [1, 2, 2, 2]
    assert "20% of 2 vCPUs" in page.locator("#figures-cpu").inner_text()
    assert page.get_by_role("img", name="Memory used against the 2048 MiB it was given", exact=False).count() == 1
    page.get_by_role("link", name="Last hour").click()
    page.wait_for_url(f"{live_portal}/instances/{web.pk}/?window=1h")
    assert page.evaluate(DRAWN, ["usage-cpu"])[0]["points"] == 60
    assert page.script_errors == []


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_an_instance_without_samples_says_when_they_come(chromium, live_portal, member, transactional_db, stack, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/instances/{instance_of(stack, 'db').pk}/")
    inspect_page(page, "instance-usage-empty", width)
    assert "the first is expected by" in page.locator("#no-samples").inner_text()


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_hosts_page_draws_each_hosts_load(chromium, live_portal, operator, transactional_db, host, width):
    host_samples(host, hours=3, every=60, cpu=35.0)
    page = new_page(chromium, width)
    sign_in(page, live_portal, operator)
    page.goto(f"{live_portal}/hosts/")
    inspect_page(page, "hosts-load", width)
    (chart,) = page.evaluate(DRAWN, [f"host-load-{host.pk}"])
    assert chart["width"] > 200, chart
    assert chart["height"] > 100, chart
    assert (chart["points"], chart["lines"]) == (180, 2)


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_stack_pages_usage_card(chromium, live_portal, member, sampled_stack, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/{sampled_stack.pk}/")
    inspect_page(page, "stack-usage", width)
    assert "another 10 hours of samples are needed" in page.locator("#tier-usage-1").inner_text()

"""The usage page in a real browser: the chart is drawn from the data island, the page fits phone and
desktop widths, passes the accessibility checks and runs no failing script."""

from __future__ import annotations

import pytest

from provisioning.models import Status
from tests.browser_pages import inspect_page, new_page, sign_in
from tests.usage.conftest import at
from usage.sampler import usage_sample

pytestmark = [pytest.mark.xdist_group("browser-usage")]


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_chart_is_drawn_and_the_page_passes_the_checks(
    chromium, live_portal, transactional_db, prices, make_stack, viewer, project, width
):
    make_stack("web", created=at("2026-03-01 23:57"), tiers=[(2, 1024, 10, Status.RUNNING)])
    make_stack("db", created=at("2026-03-02 00:00"), tiers=[(1, 2048, 20, Status.SHELVED)])
    usage_sample(now=at("2026-03-02 00:06"))

    page = new_page(chromium, width)
    sign_in(page, live_portal, viewer)
    page.goto(f"{live_portal}/projects/{project.pk}/usage/?from=2026-03-01&to=2026-03-07")
    inspect_page(page, "usage", width)
    drawn = page.evaluate(
        """() => {
          const chart = Chart.getChart(document.getElementById("usage-chart"));
          return chart && {labels: chart.data.labels.length, stacks: chart.data.datasets.map((d) => d.label)};
        }"""
    )
    assert drawn == {"labels": 7, "stacks": ["web", "db"]}
    assert page.get_by_role("row").count() == 1 + 3  # the header and a row per stack and day

"""The usage page of a project: a chart from a data island, the same numbers in a table, a CSV link."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from provisioning.models import Stack, Status
from tests.usage.conftest import at
from usage.sampler import usage_sample


def page_url(project, query: str = "") -> str:
    return f"/projects/{project.pk}/usage/{'?' + query if query else ''}"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sampled(prices, make_stack):
    web = make_stack("web", created=at("2026-03-01 23:57"), tiers=[(2, 1024, 10, Status.RUNNING)])
    usage_sample(now=at("2026-03-02 00:06"))
    return web


def data_island(html: str) -> dict:
    found = re.search(r'<script id="usage-chart-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no data island"
    return json.loads(found.group(1))


# Refusals first.


def test_strangers_are_sent_to_sign_in_and_outsiders_get_404(client, outsider, project, sampled):
    response = client.get(page_url(project))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    response = signed_in(outsider).get(page_url(project))
    assert response.status_code == 404
    assert b"web" not in response.content


def test_a_bad_period_is_said_next_to_its_field_and_this_month_is_shown(viewer, project, sampled):
    response = signed_in(viewer).get(page_url(project, "from=2026-03-09&to=2026-03-01"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="usage-from-error"' in html
    assert "from (2026-03-09) must not be after to (2026-03-01)" in html
    assert 'value="2026-03-09"' in html  # what was typed stays, to be corrected
    assert "this month so far" in html


# What people in the project see.


def test_the_page_has_the_chart_data_the_table_and_the_csv_link(viewer, project, sampled):
    response = signed_in(viewer).get(page_url(project, "from=2026-03-01&to=2026-03-03"))
    assert response.status_code == 200
    html = response.content.decode()
    assert data_island(html) == {
        "currency": "EUR",
        "days": ["2026-03-01", "2026-03-02", "2026-03-03"],
        "series": [{"label": "web", "costs": [0.13, 0.26, 0.0]}],
    }
    # The table: the same figures, one row per stack and day, and the total.
    assert html.count('<th scope="row"') == 2
    assert "0.1300" in html
    assert "0.2600" in html
    assert "0.39 EUR" in html
    assert f'href="/api/v1/projects/{project.pk}/usage/?format=csv&amp;from=2026-03-01&amp;to=2026-03-03"' in html
    # No inline script (CSP): every script is a file, or the data island.
    for tag in re.findall(r"<script[^>]*>", html):
        assert " src=" in tag or 'type="application/json"' in tag, tag
    assert "js/usage_chart.js" in html
    assert "vendor/chartjs/chart.umd.min.js" in html


def test_a_removed_stack_is_still_in_the_table(viewer, project, sampled):
    Stack.objects.filter(pk=sampled.pk).delete()
    html = signed_in(viewer).get(page_url(project, "from=2026-03-01&to=2026-03-02")).content.decode()
    assert html.count("(removed)") == 2
    assert data_island(html)["series"][0]["label"] == "web"


def test_the_chart_names_the_costliest_stacks_and_sums_the_rest(viewer, project, prices, make_stack):
    for n in range(10):
        make_stack(f"s{n}", created=at("2026-03-01 10:00"), tiers=[(n + 1, 0, 0, Status.RUNNING)])
    usage_sample(now=at("2026-03-01 10:06"))
    series = data_island(signed_in(viewer).get(page_url(project, "from=2026-03-01&to=2026-03-01")).content.decode())[
        "series"
    ]
    assert [s["label"] for s in series] == ["s9", "s8", "s7", "s6", "s5", "s4", "s3", "s2", "2 other stacks"]
    assert series[-1]["costs"] == [pytest.approx(0.3)]  # s1 and s0: 2 and 1 vCPUs for 0.1 hours

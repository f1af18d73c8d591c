"""Prices from the environment, the launch estimate and the tags other pages show costs with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.template import Context, Template

from provisioning.models import Status
from tests.usage.conftest import at
from usage.pricing import launch_cost
from usage.sampler import usage_sample


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORTAL_PRICE_VCPU_HOUR", "abc"),
        ("PORTAL_PRICE_MEMORY_GIB_HOUR", "-1"),
        ("PORTAL_PRICE_DISK_GIB_HOUR", "1e3"),
        ("PORTAL_PRICE_SNAPSHOT_GIB_HOUR", "0.1234567890"),
        ("PORTAL_CURRENCY", "euro"),
    ],
)
def test_a_price_that_is_no_decimal_stops_the_portal(variable, value):
    env = {**os.environ, variable: value}
    started = subprocess.run(
        [sys.executable, "-c", "import tests.settings"], env=env, capture_output=True, text=True, check=False
    )
    assert started.returncode != 0
    assert f"environment variable {variable}={value!r} is invalid" in started.stderr


def test_launch_cost_per_hour_and_for_the_lease(prices):
    # 2 vCPUs (2), 3 GiB of memory (1.5), 10 GiB of disk (0.1): 3.6 an hour; 90 minutes: 5.4.
    assert launch_cost(vcpus=2, memory_mib=3072, disk_gib=10, lease_seconds=5400) == (Decimal("3.60"), Decimal("5.40"))
    assert launch_cost(vcpus=0, memory_mib=0, disk_gib=0, lease_seconds=3600) == (Decimal("0.00"), Decimal("0.00"))


def test_launch_cost_rounds_to_the_cent(settings):
    settings.PRICE_VCPU_HOUR, settings.PRICE_MEMORY_GIB_HOUR, settings.PRICE_DISK_GIB_HOUR = "0.01", "0.005", "0.0002"
    # 0.01 + 0.0025 + 0.0002 = 0.0127 an hour; 4 hours 0.0508.
    assert launch_cost(vcpus=1, memory_mib=512, disk_gib=1, lease_seconds=4 * 3600) == (
        Decimal("0.01"),
        Decimal("0.05"),
    )


def render(text: str, **context) -> str:
    return Template("{% load usage_tags %}" + text).render(Context(context))


def test_stack_cost_tag_adds_up_the_stack_records(prices, make_stack):
    stack = make_stack(created=at("2026-03-31 23:57"), tiers=[(2, 1024, 10, Status.RUNNING)])
    other = make_stack("other", created=at("2026-03-31 23:57"))
    assert render("{% stack_cost stack %}", stack=stack) == "Cost so far: 0.00 EUR"
    usage_sample(now=at("2026-04-01 00:06"))
    # 0.15 hours of 2 vCPUs (0.3), 1 GiB (0.075), 10 GiB of disk (0.015), over two days' records.
    assert render("{% stack_cost stack %}", stack=stack) == "Cost so far: 0.39 EUR"
    assert render("{% stack_cost stack %}", stack=other) == "Cost so far: 0.24 EUR"  # 1 vCPU: 0.15 + 0.075 + 0.015


def test_launch_cost_tag_and_the_prices_for_scripts(prices):
    text = render("{% launch_cost vcpus=2 memory_mib=3072 disk_gib=10 lease_seconds=5400 %}")
    assert text == "About 3.60 EUR per hour while running, 5.40 EUR for the whole lease"
    island = render("{% launch_prices_data %}")
    assert island.startswith('<script id="launch-prices" type="application/json">')
    data = json.loads(island.split(">", 1)[1].rsplit("<", 1)[0])
    assert data == {"currency": "EUR", "vcpu_hour": "1", "memory_gib_hour": "0.5", "disk_gib_hour": "0.01"}

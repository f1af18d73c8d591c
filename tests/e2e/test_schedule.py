"""A weekly schedule on a real three-tier stack: shelved at its "down", unshelved at its "up", records kept.

The sweep is called with the moments the schedule changes at (``now=``); everything else is real:
the guests' memory saved on the host, the vCPUs and memory given back, the guests resumed.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from provisioning.models import Host, Status
from provisioning.services import lifecycle, schedules
from tests.e2e.records import launch_classic, page_with, post_record, web_url

pytestmark = pytest.mark.e2e

BERLIN = ZoneInfo("Europe/Berlin")
WORKING_HOURS = {
    "time_zone": "Europe/Berlin",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "up": "08:00", "down": "19:00"}],
}


def berlin(day: int, hour: int) -> datetime:
    """Day 0 is Monday 2026-12-07."""
    return datetime(2026, 12, 7 + day, hour, tzinfo=BERLIN)


def test_a_schedule_shelves_and_unshelves_a_real_stack(
    operator, member, project, inline_demo_catalog, django_capture_on_commit_callbacks
):
    def run(work):
        with django_capture_on_commit_callbacks(execute=True):
            return work()

    shop = launch_classic(operator=operator, member=member, project=project, capture=django_capture_on_commit_callbacks)
    page_with(shop, shop.instances.get(role="db").name, what="the web page showing the chain")
    assert post_record(web_url(shop), "before the evening")[0] == 201
    schedules.stack_schedule_set(user=member, stack=shop, document=WORKING_HOURS)

    assert run(lambda: schedules.schedules_apply(now=berlin(0, 12))) == 0  # the first look only notes "up"
    assert run(lambda: schedules.schedules_apply(now=berlin(0, 19))) == 1
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    host = Host.objects.get(name="local")
    assert (host.allocated_vcpus, host.allocated_memory_mib) == (0, 0)

    assert run(lambda: schedules.schedules_apply(now=berlin(1, 8))) == 1
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING, shop.status_reason
    page_with(shop, "before the evening", what="the record after the morning's unshelve")

    run(lambda: lifecycle.stack_destroy(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.DELETED, shop.status_reason

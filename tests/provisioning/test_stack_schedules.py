"""Weekly schedules: parsed strictly, judged in their own time zone, acted on at their changes only."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from portal import errors
from provisioning.models import Stack, Status
from provisioning.services import schedules
from provisioning.stack_schedules import MAX_WINDOWS, parse_schedule

PARIS = ZoneInfo("Europe/Paris")
OFFICE = {
    "time_zone": "Europe/Paris",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "up": "08:00", "down": "19:00"}],
}


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Paris in the week of Monday 2026-12-07 (day 0 = Monday)."""
    return datetime(2026, 12, 7 + day, hour, minute, tzinfo=PARIS)


# --- bad input first ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"time_zone": "Mars/Olympus", "windows": OFFICE["windows"]}, "schedule.time_zone"),
        ({"time_zone": "UTC", "windows": []}, "schedule.windows"),
        (
            {"time_zone": "UTC", "windows": [{"days": ["someday"], "up": "08:00", "down": "09:00"}]},
            "schedule.windows[0].days",
        ),
        ({"time_zone": "UTC", "windows": [{"days": ["mon"], "up": "8am", "down": "09:00"}]}, "schedule.windows[0].up"),
        (
            {"time_zone": "UTC", "windows": [{"days": ["mon"], "up": "24:00", "down": "09:00"}]},
            "schedule.windows[0].up",
        ),
        ({"time_zone": "UTC", "windows": [{"days": ["mon"], "up": "09:00", "down": "09:00"}]}, "schedule.windows[0]"),
        (
            {"time_zone": "UTC", "windows": [{"days": ["mon"], "up": "09:00", "down": "10:00", "x": 1}]},
            "schedule.windows[0]",
        ),
        ({"time_zone": "UTC", "windows": OFFICE["windows"] * (MAX_WINDOWS + 1)}, "schedule.windows"),
    ],
)
def test_a_bad_schedule_is_refused_by_its_path(document, field):
    with pytest.raises(errors.Invalid) as refused:
        parse_schedule(document)
    assert field in refused.value.fields


def test_every_problem_is_named_at_once():
    with pytest.raises(errors.Invalid) as refused:
        parse_schedule({"time_zone": "Nowhere", "windows": [{"days": ["mon"], "up": "x", "down": "y"}]})
    assert set(refused.value.fields) == {"schedule.time_zone", "schedule.windows[0].up", "schedule.windows[0].down"}


def test_a_window_is_judged_in_its_own_time_zone():
    office = parse_schedule(OFFICE)
    assert office.wants_up(paris(0, 8))
    assert office.wants_up(paris(4, 18, 59))
    assert not office.wants_up(paris(4, 19))
    assert not office.wants_up(paris(5, 10))  # Saturday
    assert not office.wants_up(paris(0, 7, 59))
    # 07:30 UTC is 08:30 in Paris in winter.
    assert office.wants_up(datetime(2026, 12, 7, 7, 30, tzinfo=ZoneInfo("UTC")))
    assert office.next_change(paris(0, 12)) == paris(0, 19)


def test_a_window_over_midnight_runs_into_the_next_day():
    night = parse_schedule({"time_zone": "UTC", "windows": [{"days": ["fri"], "up": "22:00", "down": "06:00"}]})
    utc = ZoneInfo("UTC")
    assert night.wants_up(datetime(2026, 12, 11, 23, 0, tzinfo=utc))  # Friday night
    assert night.wants_up(datetime(2026, 12, 12, 5, 59, tzinfo=utc))  # Saturday morning
    assert not night.wants_up(datetime(2026, 12, 12, 6, 0, tzinfo=utc))
    assert not night.wants_up(datetime(2026, 12, 10, 23, 0, tzinfo=utc))  # Thursday night


# --- the sweep ------------------------------------------------------------------------------------


def test_only_members_set_a_schedule_and_a_bad_one_changes_nothing(shop, viewer, member):
    with pytest.raises(errors.PermissionDenied):
        schedules.stack_schedule_set(user=viewer, stack=shop, document=OFFICE)
    with pytest.raises(errors.Invalid):
        schedules.stack_schedule_set(user=member, stack=shop, document={"windows": "always"})
    assert Stack.objects.get(pk=shop.pk).schedule is None


def test_the_schedule_shelves_and_unshelves_at_its_changes_only(shop, member, step):
    schedules.stack_schedule_set(user=member, stack=shop, document=OFFICE)
    # Set on a Monday evening: the first sweep only notes "down"; nothing is shelved until a change.
    assert step(lambda: schedules.schedules_apply(now=paris(0, 20))) == 0
    assert Stack.objects.get(pk=shop.pk).status == Status.RUNNING
    # Tuesday 08:00: up (already running: nothing to do); 19:00: down, shelved.
    assert step(lambda: schedules.schedules_apply(now=paris(1, 8))) == 0
    assert step(lambda: schedules.schedules_apply(now=paris(1, 19))) == 1
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    assert step(lambda: schedules.schedules_apply(now=paris(1, 19, 1))) == 0  # once per change
    # Wednesday 08:00: unshelved.
    assert step(lambda: schedules.schedules_apply(now=paris(2, 8))) == 1
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING, shop.status_reason


def test_a_refused_unshelve_is_said_on_the_stack(shop, member, project, step):
    schedules.stack_schedule_set(user=member, stack=shop, document=OFFICE)
    step(lambda: schedules.schedules_apply(now=paris(1, 12)))
    step(lambda: schedules.schedules_apply(now=paris(1, 19)))
    project.max_vcpus = 0
    project.save()
    step(lambda: schedules.schedules_apply(now=paris(2, 8)))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED
    assert shop.events.filter(is_error=True, message__startswith="the schedule could not unshelve it").exists()


def test_the_api_sets_and_removes_a_schedule(shop, member, outsider, api):
    url = f"/api/v1/stacks/{shop.pk}/schedule/"
    assert api(outsider).put(url, OFFICE, format="json").status_code == 404
    answer = api(member).put(
        url, {"time_zone": "UTC", "windows": [{"days": ["mon"], "up": "x", "down": "09:00"}]}, format="json"
    )
    assert answer.status_code == 400
    assert "schedule.windows[0].up" in answer.json()["fields"]
    answer = api(member).put(url, OFFICE, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["schedule"] == OFFICE
    assert api(member).put(url, None, format="json").status_code == 400
    assert api(member).delete(url).json()["schedule"] is None

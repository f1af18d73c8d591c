"""The one formatter: moments cut to the minute with their zone, durations in two units at most,
Django's own renderings (the admin) the same way, and old events' baked moments moved into data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import formats, timezone

from portal.audit_display import detail_text
from portal.moments import duration_text, duration_until, moment_text
from provisioning.baked_moments import unbake

LATE = datetime(2026, 12, 4, 22, 8, 59, 900000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (-5, "0 seconds"),
        (0, "0 seconds"),
        (0.2, "less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (61, "1 minute 1 second"),
        (3599, "59 minutes 59 seconds"),
        (5400, "1 hour 30 minutes"),
        (86399, "23 hours 59 minutes"),
        (90061, "1 day 1 hour"),
        (86400 + 59, "1 day"),
        (604799, "6 days 23 hours"),
        (604800, "7 days"),
        (timedelta(hours=165, minutes=59, seconds=30), "6 days 21 hours"),
    ],
)
def test_durations_read_in_their_two_largest_units_cut_not_rounded(length, text):
    assert duration_text(length) == text


def test_a_moment_is_cut_to_its_minute_in_the_formatter_and_in_django_alike():
    with timezone.override("Asia/Kolkata"):
        assert moment_text(LATE) == "2026-12-05 03:38 IST"
        assert formats.date_format(timezone.localtime(LATE), "DATETIME_FORMAT") == "2026-12-05 03:38 IST"
        assert formats.localize(timezone.template_localtime(LATE)) == "2026-12-05 03:38 IST"
    assert moment_text(LATE) == "2026-12-04 22:08 UTC"
    assert formats.date_format(LATE, "SHORT_DATETIME_FORMAT") == "2026-12-04 22:08 UTC"
    assert formats.date_format(LATE.date(), "DATE_FORMAT") == "2026-12-04"


def test_time_left_counts_down_and_stops_at_none():
    now = LATE
    assert duration_until(now + timedelta(hours=2, minutes=5, seconds=9), now=now) == "2 hours 5 minutes"
    assert duration_until(now - timedelta(minutes=1), now=now) == "0 seconds"


@pytest.mark.parametrize(
    ("message", "text", "moment"),
    [
        ("lease renewed until 2026-12-04 23:09:50 UTC", "lease renewed until", datetime(2026, 12, 4, 23, 9, 50)),
        ("idle: shelved at 2026-12-04 23:09 UTC", "idle: shelved at", datetime(2026, 12, 4, 23, 9)),
    ],
)
def test_old_events_give_up_their_baked_moment(message, text, moment):
    assert unbake(message) == (text, moment.replace(tzinfo=UTC))


@pytest.mark.parametrize(
    "message",
    ["running", "lease renewed until", "UTC", "network 10.0.0.0/24 ready", "at 2026-13-45 99:99:99 UTC", "x 12:00 UTC"],
)
def test_other_events_keep_their_text(message):
    assert unbake(message) is None


def test_audit_details_read_the_one_way():
    detail = {
        "expires_at": "2026-12-04T23:09:50.123456+00:00",
        "lease_seconds": 604799,
        "shortened": False,
        "recipients": ["mateo", "olivia"],
        "reason": "2026-12-04 is a date, not a moment",
        "moment": None,
    }
    with timezone.override("Asia/Kolkata"):
        assert detail_text(detail) == (
            "expires_at: 2026-12-05 04:39 IST; lease_seconds: 6 days 23 hours; shortened: no; "
            "recipients: mateo, olivia; reason: 2026-12-04 is a date, not a moment; moment: —"
        )
    assert detail_text({}) == "—"

"""Every page writes moments one way, in the reader's time zone (reported by the browser's cookie)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.utils import timezone

from portal.time_zone import zone_from_cookie
from tests.factories import FeedFactory

MOMENT = datetime(2026, 11, 26, 13, 5, tzinfo=UTC)


def _render(value) -> str:
    return Template("{% load portal_format %}{{ value|when }}").render(Context({"value": value}))


def test_a_moment_is_written_in_the_active_zone_with_the_exact_instant_attached():
    with timezone.override("Europe/Paris"):
        assert _render(MOMENT) == '<time datetime="2026-11-26T13:05:00+00:00">2026-11-26 14:05 CET</time>'
    assert _render(MOMENT) == '<time datetime="2026-11-26T13:05:00+00:00">2026-11-26 13:05 UTC</time>'


def test_no_moment_is_a_dash():
    assert _render(None) == "—"


@pytest.mark.parametrize(
    ("cookie", "zone"),
    [("Europe%2FParis", "Europe/Paris"), ("America/New_York", "America/New_York"), ("UTC", "UTC")],
)
def test_known_zones_are_taken_from_the_cookie(cookie, zone):
    assert str(zone_from_cookie(cookie)) == zone


@pytest.mark.parametrize("cookie", [None, "", "Mars/Olympus", "../../etc/passwd", "Europe/Paris\x00", "%E0%A4%A"])
def test_anything_else_leaves_utc(cookie):
    assert zone_from_cookie(cookie) is None


def test_pages_use_the_cookies_zone_and_nothing_leaks_past_the_request(client, member, project, settings):
    FeedFactory(project=project, last_import_at=MOMENT)
    client.force_login(member)
    client.cookies["tz"] = "Asia%2FTokyo"
    assert "2026-11-26 22:05 JST" in client.get("/catalog/").content.decode()
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE
    client.cookies["tz"] = "Nowhere/At_all"
    assert "2026-11-26 13:05 UTC" in client.get("/catalog/").content.decode()

"""Events written before moments were data give theirs up: the text loses it, ``moment`` keeps it,
and the page then writes it in the reader's zone like any other."""

from __future__ import annotations

from datetime import UTC, datetime

from provisioning.baked_moments import unbake_event_moments
from provisioning.models import StackEvent


def test_old_rows_are_unbaked_once_and_the_page_shows_the_readers_zone(client, shop, member):
    old = StackEvent.objects.create(stack=shop, message="lease renewed until 2026-12-04 23:09:50 UTC")
    kept = StackEvent.objects.create(stack=shop, message="network 10.0.0.0/24 ready on test-host")
    assert unbake_event_moments(StackEvent) == 1
    assert unbake_event_moments(StackEvent) == 0
    old.refresh_from_db()
    kept.refresh_from_db()
    assert (old.message, old.moment) == ("lease renewed until", datetime(2026, 12, 4, 23, 9, 50, tzinfo=UTC))
    assert kept.message == "network 10.0.0.0/24 ready on test-host"
    assert kept.moment is None
    client.force_login(member)
    client.cookies["tz"] = "Asia%2FKolkata"
    html = client.get(f"/stacks/{shop.pk}/").content.decode()
    assert "2026-12-05 04:39 IST" in html
    assert "23:09:50 UTC" not in html

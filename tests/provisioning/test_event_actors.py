"""Every event names who asked for it (the portal when nobody did), on the stack page and in the API;
no message says "by user", and none carries a moment in its words."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from portal.models import RunEnd
from provisioning.models import Stack, StackEvent
from provisioning.services import lifecycle, power


def _events(stack) -> list[tuple[str, str | None]]:
    rows = StackEvent.objects.filter(stack=stack).order_by("created_at", "id")
    return [(e.message, e.actor.username if e.actor else None) for e in rows.select_related("actor")]


def test_what_a_person_asks_for_carries_their_name_to_the_end_of_the_job(shop, member, owner, step):
    step(lambda: lifecycle.stack_renew_lease(user=member, stack=shop, lease_seconds=2 * 3600))
    step(lambda: power.stack_power(user=owner, stack=shop, action="shutdown"))
    events = _events(shop)
    assert events[0][0].startswith("queued: ")
    assert events[0][1] == "mateo"
    assert ("lease renewed until", "mateo") in events
    assert ("shutdown: queued", "olivia") in events
    done = [actor for message, actor in events if message.endswith(": shut down")]
    assert done, events
    assert set(done) == {"olivia"}, events
    assert events[-1][1] == "olivia"  # the job's last word: the stack settled, as olivia asked
    assert (
        StackEvent.objects.get(stack=shop, message="lease renewed until").moment
        == Stack.objects.get(pk=shop.pk).expires_at
    )


def test_a_delete_names_who_asked_and_no_message_says_by_user(shop, member, step):
    step(lambda: lifecycle.stack_destroy(user=member, stack=shop))
    events = _events(shop)
    assert ("deleting", "mateo") in events
    assert not [m for m, _ in events if "by user" in m]
    assert not [m for m, _ in events if re.search(r"\d{2}:\d{2}", m)], events


def test_what_the_portal_does_on_its_own_names_no_person(shop, project, step):
    project.at_run_end = RunEnd.DELETE
    project.save()
    Stack.objects.filter(pk=shop.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    step(lambda: lifecycle.leases_expire())
    assert ("deleting: lease expired", None) in _events(shop)


def test_the_stack_page_names_each_events_actor(client, shop, member, step):
    step(lambda: lifecycle.stack_renew_lease(user=member, stack=shop, lease_seconds=2 * 3600))
    client.force_login(member)
    client.cookies["tz"] = "Asia%2FKolkata"
    html = client.get(f"/stacks/{shop.pk}/").content.decode()
    assert re.search(
        r"lease renewed until <time datetime=\"[^\"]+\">[\d-]+ [\d:]+ IST</time> <span[^>]*>\(by mateo\)", html
    )
    assert "(by the portal)" in html  # the build's own lines


def test_the_api_lists_events_with_their_actor_and_iso_moments(api, shop, member, outsider, step):
    step(lambda: lifecycle.stack_renew_lease(user=member, stack=shop, lease_seconds=2 * 3600))
    answer = api(member).get(f"/api/v1/stacks/{shop.pk}/events/")
    assert answer.status_code == 200
    rows = answer.json()["results"]
    renewed = next(row for row in rows if row["message"] == "lease renewed until")
    assert renewed["actor"] == "mateo"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", renewed["moment"])
    assert any(row["actor"] is None for row in rows)
    assert rows[0]["created_at"] >= rows[-1]["created_at"]  # newest first


def test_another_projects_user_cannot_read_the_events(api, shop, outsider):
    assert api(outsider).get(f"/api/v1/stacks/{shop.pk}/events/").status_code == 404
    assert api(None).get(f"/api/v1/stacks/{shop.pk}/events/").status_code in (401, 403)

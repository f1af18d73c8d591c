"""One's own notifications through the API and the pages: others' are missing (404), the list is
newest first and paged, and the lifecycle may announce from inside its transaction."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import transaction

from notices.models import Notification
from notices.services import notify_stack_event


@pytest.fixture
def told(step, people, make_stack):
    """Three events about two stacks, told to the owner and the member."""
    first = make_stack("first")
    second = make_stack("second")
    step(lambda: notify_stack_event(stack=first, event="lease.ended"))
    step(lambda: notify_stack_event(stack=second, event="stack.shelved"))
    step(lambda: notify_stack_event(stack=first, event="stack.deleted"))
    return first, second


def mine(user):
    return Notification.objects.filter(user=user).order_by("pk")


def test_an_outsider_cannot_list_read_or_mark_anyone_elses_notifications(api, told, member, outsider):
    client = api(outsider)
    assert client.get("/api/v1/notifications/").json()["results"] == []
    target = mine(member).first()
    response = client.post(f"/api/v1/notifications/{target.pk}/read/")
    assert response.status_code == 404
    assert client.post("/api/v1/notifications/read-all/").json() == {"marked": 0}
    target.refresh_from_db()
    assert target.read_at is None
    assert api(None).get("/api/v1/notifications/").status_code == 401


def test_a_member_of_the_same_project_cannot_mark_anothers_either(api, told, owner, member):
    target = mine(owner).first()
    assert api(member).post(f"/api/v1/notifications/{target.pk}/read/").status_code == 404
    target.refresh_from_db()
    assert target.read_at is None


def test_a_bad_filter_value_is_refused(api, told, member):
    for value in ("maybe", "", "1"):
        assert api(member).get("/api/v1/notifications/", {"unread": value}).status_code == 400, value


def test_the_list_is_ones_own_newest_first_with_an_unread_filter(api, told, member):
    client = api(member)
    page = client.get("/api/v1/notifications/").json()
    assert page["count"] == 3
    assert [item["event"] for item in page["results"]] == ["stack.deleted", "stack.shelved", "lease.ended"]
    first = page["results"][-1]
    assert first["stack"]["name"] == "first"
    assert first["project"]["name"] == "alpha"
    assert first["read"] is False
    assert first["moment"] is not None
    assert client.post(f"/api/v1/notifications/{first['id']}/read/").json()["read"] is True
    unread = client.get("/api/v1/notifications/", {"unread": "true"}).json()
    assert [item["event"] for item in unread["results"]] == ["stack.deleted", "stack.shelved"]
    assert client.get("/api/v1/notifications/", {"unread": "false"}).json()["count"] == 1
    assert client.get("/api/v1/notifications/", {"limit": 1}).json()["next"] is not None


def test_read_all_marks_only_ones_own(api, told, owner, member):
    assert api(member).post("/api/v1/notifications/read-all/").json() == {"marked": 3}
    assert not mine(member).filter(read_at__isnull=True).exists()
    assert mine(owner).filter(read_at__isnull=True).count() == 3


def test_someone_who_left_the_project_no_longer_sees_its_notifications(api, told, member, project):
    from portal.models import Membership

    Membership.objects.filter(user=member, project=project).delete()
    assert api(member).get("/api/v1/notifications/").json()["count"] == 0


def test_an_announcement_inside_a_rolled_back_transaction_leaves_nothing(
    people, make_stack, django_capture_on_commit_callbacks
):
    stack = make_stack()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                notify_stack_event(stack=stack, event="lease.ended")
                assert Notification.objects.count() == 2  # written in the caller's transaction...
                raise RuntimeError("the lifecycle's transaction fails")
        except RuntimeError:
            pass
    assert Notification.objects.count() == 0  # ...and gone with it
    assert callbacks == []  # no mail, no nudge
    assert mail.outbox == []


def test_mail_waits_for_the_callers_commit(people, make_stack, django_capture_on_commit_callbacks):
    stack = make_stack()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            notify_stack_event(stack=stack, event="stack.shelved")
        assert mail.outbox == []
    for callback in callbacks:
        callback()
    assert sorted(message.to[0] for message in mail.outbox) == ["mateo@example.org", "olivia@example.org"]
    assert all("was shelved" in message.subject for message in mail.outbox)


def test_the_page_lists_ones_own_and_marks_them_read(client, told, member, owner):
    client.force_login(member)
    page = client.get("/notifications/")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count("list-group-item-warning") == 3
    assert "Mark all 3 read" in text
    target = mine(member).first()
    assert client.post(f"/notifications/{target.pk}/read/").status_code == 302
    target.refresh_from_db()
    assert target.read_at is not None
    others = mine(owner).first()
    assert client.post(f"/notifications/{others.pk}/read/").status_code == 404
    assert client.get(f"/notifications/{others.pk}/read/").status_code == 405
    client.post("/notifications/read-all/")
    assert not mine(member).filter(read_at__isnull=True).exists()
    assert mine(owner).filter(read_at__isnull=True).count() == 3


def test_the_navigation_shows_the_unread_count(client, told, member, viewer):
    client.force_login(member)
    text = client.get("/notifications/").content.decode()
    assert '<span id="nav-unread"' in text
    assert '>3<span class="visually-hidden"> unread' in text
    badge = client.get("/notifications/badge/")
    assert badge.status_code == 200
    assert ">3<" in badge.content.decode()
    client.force_login(viewer)  # told nothing: no badge
    assert 'visually-hidden"> unread' not in client.get("/notifications/badge/").content.decode()


def test_the_badge_stops_polling_once_signed_out(client, db):
    assert client.get("/notifications/badge/").status_code == 286
    assert client.get("/notifications/").status_code == 302  # the page needs signing in

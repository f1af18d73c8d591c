"""Warnings before a lease ends: each offset once per lease end, again for a renewed lease, a late
one at once (only the closest to the end), to everyone who may act, in the portal and by mail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail

from notices.models import Event, LeaseWarning, Notification
from notices.services import lease_warnings_send
from portal.models import AuditEvent
from provisioning.models import Stack, Status

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def warned_project(project):
    project.warn_before = [3600, 600]
    project.save(update_fields=["warn_before"])
    return project


def sweep(step, at):
    return step(lambda: lease_warnings_send(now=at))


def test_nothing_is_sent_before_the_first_warning_is_due(step, people, warned_project, make_stack):
    stack = make_stack(ends_in=2 * HOUR)
    assert sweep(step, stack.expires_at - HOUR - MINUTE) == 0
    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_each_warning_goes_out_once_per_lease_end(step, people, warned_project, make_stack):
    stack = make_stack(ends_in=2 * HOUR)
    end = stack.expires_at
    assert sweep(step, end - HOUR + MINUTE) == 1
    assert sweep(step, end - HOUR + 2 * MINUTE) == 0  # the next minute's sweep: already sent
    assert sweep(step, end - 10 * MINUTE + MINUTE) == 1
    assert sweep(step, end - MINUTE) == 0
    assert sweep(step, end + MINUTE) == 0  # ended: the lifecycle tells that (lease.ended)
    offsets = sorted(LeaseWarning.objects.filter(stack=stack).values_list("offset_seconds", flat=True))
    assert offsets == [600, 3600]
    # Two warnings, each to the owner and the member (not the viewer, not the outsider).
    told = sorted(Notification.objects.values_list("user__username", flat=True))
    assert told == ["mateo", "mateo", "olivia", "olivia"]
    assert set(Notification.objects.values_list("event", "moment")) == {(Event.LEASE_WARNING, end)}
    assert sorted(message.to[0] for message in mail.outbox) == [
        "mateo@example.org",
        "mateo@example.org",
        "olivia@example.org",
        "olivia@example.org",
    ]
    assert AuditEvent.objects.filter(action="notice.lease.warning").count() == 2


def test_a_renewed_lease_is_warned_again_for_its_new_end(step, people, warned_project, make_stack):
    stack = make_stack(ends_in=2 * HOUR)
    first_end = stack.expires_at
    assert sweep(step, first_end - HOUR + MINUTE) == 1
    new_end = first_end + 3 * HOUR
    Stack.objects.filter(pk=stack.pk).update(expires_at=new_end)
    assert sweep(step, first_end - HOUR + 2 * MINUTE) == 0  # the new end is far away
    assert sweep(step, new_end - HOUR + MINUTE) == 1
    assert set(Notification.objects.values_list("moment", flat=True)) == {first_end, new_end}


def test_a_warning_due_in_the_past_goes_out_at_once_but_only_the_closest_to_the_end(step, people, project, make_stack):
    project.warn_before = [86400, 3600, 600]
    project.save(update_fields=["warn_before"])
    stack = make_stack(ends_in=30 * MINUTE)  # a 30-minute lease: "a day" and "an hour" before have passed
    now = stack.expires_at - 30 * MINUTE
    assert sweep(step, now) == 1
    assert Notification.objects.count() == 2  # one warning, to the owner and the member
    assert len(mail.outbox) == 2
    rows = dict(LeaseWarning.objects.filter(stack=stack).values_list("offset_seconds", "sent"))
    assert rows == {86400: False, 3600: True}  # the day-before one is passed over, never sent late
    assert sweep(step, now + MINUTE) == 0
    assert sweep(step, stack.expires_at - 10 * MINUTE) == 1  # the 10-minute one still comes


def test_stacks_that_cannot_lose_anything_any_more_are_not_warned(step, people, warned_project, make_stack):
    for status in (Status.DELETING, Status.DELETED, Status.SHELVING):
        make_stack(f"s-{status}", ends_in=30 * MINUTE, status=status)
    assert sweep(step, None) == 0


def test_a_project_without_warnings_warns_nobody(step, people, project, make_stack):
    project.warn_before = []
    project.save(update_fields=["warn_before"])
    make_stack(ends_in=5 * MINUTE)
    assert sweep(step, None) == 0


def test_only_people_who_may_act_are_warned_and_other_projects_are_untouched(
    step, people, warned_project, other_project, make_stack
):
    make_stack("ours", ends_in=5 * MINUTE)
    theirs = make_stack("theirs", ends_in=5 * MINUTE, project=other_project)
    other_project.warn_before = []
    other_project.save(update_fields=["warn_before"])
    sweep(step, None)
    assert not Notification.objects.filter(stack=theirs).exists()
    assert not Notification.objects.filter(user=people["viewer"]).exists()
    assert not Notification.objects.filter(user=people["outsider"]).exists()


def test_the_mail_says_what_ends_when_and_carries_a_link_for_its_reader(step, people, warned_project, make_stack):
    stack = make_stack("billing-web", ends_in=5 * MINUTE)
    sweep(step, None)
    message = next(message for message in mail.outbox if message.to == ["mateo@example.org"])
    assert "billing-web" in message.subject
    assert 'The lease of stack "billing-web" in project "alpha" ends' in message.body
    assert stack.expires_at.strftime("%Y-%m-%d %H:%M UTC") in message.body
    assert "shelved" in message.body  # what the policy does at the end
    links = re.findall(r"http://127\.0\.0\.1:8000/extend/([A-Za-z0-9_-]{43})/", message.body)
    assert len(links) == 1
    owner_mail = next(message for message in mail.outbox if message.to == ["olivia@example.org"])
    assert links[0] not in owner_mail.body  # each reader gets a link of their own


def test_mail_lands_in_files_in_the_mail_folder(step, settings, tmp_path, people, warned_project, make_stack):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path / "mail"
    make_stack("filed", ends_in=5 * MINUTE)
    sweep(step, None)
    files = list((tmp_path / "mail").iterdir())
    assert len(files) == 1  # one file per connection: both messages of the sweep
    text = files[0].read_text()
    assert text.count("Subject: [Stack portal] Stack filed: its lease ends") == 2
    assert "To: olivia@example.org" in text
    assert "To: mateo@example.org" in text


def test_people_without_a_mail_address_are_told_in_the_portal_only(step, owner, member, warned_project, make_stack):
    make_stack(ends_in=5 * MINUTE)
    sweep(step, None)
    assert Notification.objects.count() == 2
    assert mail.outbox == []


def test_a_shelved_stacks_warning_says_its_disks_go_when_it_ends(step, people, warned_project, make_stack):
    make_stack("kept", ends_in=5 * MINUTE, status=Status.SHELVED)
    sweep(step, None)
    body = mail.outbox[0].body
    assert "deleted, disks and all" in body
    assert "shelved:" not in body

"""The stack page and the stacks list never show more life than the stack has: no "being built" or
"being deleted" banner once it has left that state, no tier Running while the stack is deleted."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from provisioning.models import Instance, Stack, Status
from provisioning.shown_status import status_within_stack


@pytest.fixture
def web(client, member):
    client.force_login(member)
    return client


def _page(client, stack: Stack, name: str = "stack-detail") -> str:
    response = client.get(reverse(name, args=[stack.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _badges(page: str) -> list[str]:
    return re.findall(r'<span class="badge [^"]*">([^<]+)</span>', page)


def _banners(page: str) -> list[str]:
    """The messages on top of the page (the alerts of ``_message.html``), their words only."""
    found = re.findall(r'<div class="alert [^"]*alert-dismissible[^>]*>\s*(.*?)\s*<button', page, re.S)
    return [" ".join(text.split()) for text in found]


@pytest.mark.parametrize(
    ("instance_status", "stack_status", "shown"),
    [
        (Status.RUNNING, Status.DELETED, Status.DELETED),
        (Status.ERROR, Status.DELETED, Status.DELETED),
        (Status.RUNNING, Status.DELETING, Status.DELETING),
        (Status.DELETED, Status.DELETING, Status.DELETED),
        (Status.RUNNING, Status.RUNNING, Status.RUNNING),
        (Status.BUILDING, Status.BUILDING, Status.BUILDING),
        (Status.STOPPED, Status.ERROR, Status.STOPPED),
    ],
)
def test_an_instance_reads_no_livelier_than_its_stack(instance_status, stack_status, shown):
    assert status_within_stack(instance_status, stack_status) == shown


def test_a_stack_deleted_at_once_shows_no_banner_of_its_deletion(web, shop, django_capture_on_commit_callbacks):
    # Tasks run inline here: by the time the page is read the stack is gone, as with a quick worker.
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(reverse("stack-delete", args=[shop.pk]))
    assert response.status_code == 302
    shop.refresh_from_db()
    assert shop.status == Status.DELETED
    page = web.get(response.url).content.decode()
    assert not [text for text in _banners(page) if "being deleted" in text], _banners(page)
    assert "Deleted at" in page
    assert "Running" not in _badges(page)


def test_a_stack_being_deleted_keeps_its_banner_and_says_when_it_goes(web, shop):
    # The deletion is queued (its task waits for a commit that never comes in this test).
    response = web.post(reverse("stack-delete", args=[shop.pk]), follow=True)
    shop.refresh_from_db()
    assert shop.status == Status.DELETING
    page = response.content.decode()
    assert _banners(page) == ["Stack shop is being deleted with its disks and network."]
    # The page's script takes the banner away once a re-read shows the stack elsewhere.
    assert 'data-while="while-deleting"' in page
    assert 'data-status="deleting"' in page


def test_the_tiers_of_a_stack_being_deleted_read_deleting_not_running(web, shop):
    assert set(shop.instances.values_list("status", flat=True)) == {Status.RUNNING}
    Stack.objects.filter(pk=shop.pk).update(status=Status.DELETING)
    for page in (_page(web, shop), _page(web, shop, "stack-status")):
        badges = _badges(page)
        assert "Running" not in badges, badges
        # The stack, each of its three tiers and each tier's instance.
        assert badges.count("Deleting") == 1 + 3 + 3, badges
        assert "Screen" not in page
        assert "Serial" not in page


def test_a_deleted_stack_whose_instances_kept_their_status_shows_none_running(web, shop):
    # Rows left as they were by an older teardown: the page still reads the stack's own word.
    Stack.objects.filter(pk=shop.pk).update(status=Status.DELETED)
    assert Instance.objects.filter(stack=shop, status=Status.RUNNING).count() == 3
    for page in (_page(web, shop), _page(web, shop, "stack-status")):
        assert "Running" not in _badges(page), _badges(page)
        assert "Running" not in page
        assert "being built" not in page
        assert "being deleted" not in page


def test_a_settled_stack_drops_a_banner_of_its_build(web, shop, client):
    # "Being built" was said as the build began; the page is read once it is running.
    _store(client, [{"level": 25, "message": "Stack shop is being built."}])
    page = _page(web, shop)
    assert not [text for text in _banners(page) if "being built" in text], _banners(page)


def test_a_stack_still_building_keeps_its_banner_until_it_leaves_the_state(web, shop, client):
    Stack.objects.filter(pk=shop.pk).update(status=Status.BUILDING)
    _store(client, [{"level": 25, "message": "Stack shop is being built."}])
    page = _page(web, shop)
    assert _banners(page) == ["Stack shop is being built."]
    assert 'data-while="while-building"' in page


def test_a_banner_tagged_with_its_states_shows_in_them_only(web, shop, client):
    tags = "while-pending while-building"
    _store(client, [{"level": 25, "message": "Stack shop is being built.", "extra_tags": tags}])
    assert _banners(_page(web, shop)) == []  # running: outside the states it names
    Stack.objects.filter(pk=shop.pk).update(status=Status.PENDING)
    _store(client, [{"level": 25, "message": "Stack shop is being built.", "extra_tags": tags}])
    page = _page(web, shop)
    assert _banners(page) == ["Stack shop is being built."]
    assert f'data-while="{tags}"' in page


def test_errors_and_information_stay_whatever_the_state(web, shop, client):
    _store(client, [{"level": 40, "message": "Something failed."}, {"level": 20, "message": "Already running."}])
    assert _banners(_page(web, shop)) == ["Something failed.", "Already running."]


def test_a_stack_being_deleted_reads_so_in_the_list(web, shop):
    Stack.objects.filter(pk=shop.pk).update(status=Status.DELETING)
    page = web.get(reverse("stack-list")).content.decode()
    row = re.search(rf'<tr id="stack-row-{shop.pk}">(.*?)</tr>', page, re.S).group(1)
    assert "Deleting" in _badges(row)
    assert "being deleted" in row
    assert "Running" not in row


def _store(client, entries: list[dict]) -> None:
    """Messages waiting for the next page, as an action's redirect leaves them (the cookie storage
    is the first that Django's default storage reads)."""
    storage = CookieStorage(RequestFactory().get("/"))
    for entry in entries:
        storage.add(entry["level"], entry["message"], entry.get("extra_tags", ""))
    response = HttpResponse()
    storage.update(response)
    client.cookies[storage.cookie_name] = response.cookies[storage.cookie_name].value

"""The stack page as people use it: every state, the lease countdown, "Extend by…", delete with a confirm step."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from provisioning.forms import LIMIT_MARGIN, ExtendLeaseForm, TemplateLaunchForm
from provisioning.models import Stack, Status
from provisioning.services import launch


@pytest.fixture
def stack(member, project, test_host, ready_version):
    """A stack just launched (its build queued, not run): pending, a 10-minute lease."""
    return launch.stack_launch(
        user=member, project=project, name="shop", appliance_version=ready_version, lease_seconds=600
    )


@pytest.fixture
def running(member, project, test_host, ready_version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch.stack_launch(
            user=member, project=project, name="live", appliance_version=ready_version, lease_seconds=600
        )
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING
    return stack


@pytest.fixture
def web(client, member):
    client.force_login(member)
    return client


def _page(client, stack: Stack) -> str:
    response = client.get(reverse("stack-detail", args=[stack.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _flash(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _set(stack: Stack, **fields) -> Stack:
    Stack.objects.filter(pk=stack.pk).update(**fields)
    stack.refresh_from_db()
    return stack


# --- every state renders, and says what it is --------------------------------------------------


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (Status.PENDING, "Pending"),
        (Status.BUILDING, "Building"),
        (Status.RUNNING, "Running"),
        (Status.ERROR, "Error"),
        (Status.DELETING, "Deleting"),
        (Status.DELETED, "Deleted"),
    ],
)
def test_the_page_and_its_live_part_render_in_every_state(web, stack, status, shown):
    extra = {"deleted_at": timezone.now()} if status == Status.DELETED else {}
    reason = {Status.ERROR: "boot failed on test-host", Status.DELETING: "deleted by user"}.get(status, "")
    _set(stack, status=status, status_reason=reason, **extra)
    page = _page(web, stack)
    fragment = web.get(reverse("stack-status", args=[stack.pk])).content.decode()
    for html in (page, fragment):
        assert f'<span class="badge {_badge(status)}">{shown}</span>' in html
        assert "<html" not in fragment
    settled_or_gone = status in (Status.DELETING, Status.DELETED)
    assert ("data-countdown" in page) is not settled_or_gone  # a lease only while the stack holds resources
    assert ("Lease and deletion" in page) is not settled_or_gone
    if status == Status.ERROR:
        assert "boot failed on test-host" in page
    if status == Status.DELETING:
        assert "Its VMs, disks and network are being removed. Reason: deleted by user." in page
        assert 'id="stack-actions" hx-swap-oob="true"' in fragment  # the live part takes the actions away


def _badge(status: str) -> str:
    return {
        Status.RUNNING: "text-bg-success",
        Status.ERROR: "text-bg-danger",
        Status.DELETED: "text-bg-secondary",
        Status.DELETING: "text-bg-dark",
    }.get(status, "text-bg-warning")


def test_a_deleted_stack_says_so_plainly(web, stack):
    deleted_at = timezone.now()
    _set(stack, status=Status.DELETED, deleted_at=deleted_at, status_reason="deleted by user")
    page = _page(web, stack)
    assert f'Deleted at <time datetime="{deleted_at.isoformat()}">' in page
    assert "its VMs, disks and network are gone" in page
    assert f'<a href="{reverse("stack-list")}">Back to the stacks</a>' in page
    for absent in ("data-countdown", "Extend by", "Delete stack", "Deleting deleted by user", "Being deleted"):
        assert absent not in page
    assert f'hx-get="{reverse("stack-status", args=[stack.pk])}"' not in page  # nothing re-reads it
    assert "data-live-socket" not in page
    assert "Tiers" not in page  # the instances are gone; the history stays
    assert "History" in page


def test_a_settling_stack_is_re_read_often_a_settled_one_slowly(web, stack, settings):
    settings.REDIS_URL = ""
    assert 'hx-trigger="every 2s"' in _page(web, stack)
    _set(stack, status=Status.RUNNING)
    assert 'hx-trigger="every 30s"' in _page(web, stack)


def test_with_a_shared_channel_layer_the_page_listens_to_its_socket(web, stack, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"  # only read to decide whether pushes can arrive
    page = _page(web, stack)
    assert f'data-live-socket="/ws/stacks/{stack.pk}/" data-live-event="stack-changed"' in page
    assert 'hx-trigger="stack-changed, every 15s"' in page
    assert "/static/js/live_socket.js" in page
    assert "/static/js/stack_page.js" in page


# --- tiers, endpoints, consoles ------------------------------------------------------------------


def test_a_running_stack_shows_its_tier_endpoint_links_and_console_buttons(web, running):
    page = _page(web, running)
    instance = running.instances.get()
    port = instance.published_ports.get()
    assert '<h3 class="h6 mb-0">web</h3>' in page  # grouped by tier, with the tier's own badge
    assert f'href="{port.url}" target="_blank" rel="noopener"' in page
    assert f'href="{reverse("instance-screen", args=[instance.pk])}"' in page
    assert f'href="{reverse("instance-serial", args=[instance.pk])}"' in page
    assert '<svg class="diagram"' not in page  # a one-appliance stack has no diagram worth drawing


def test_endpoints_are_not_links_before_the_stack_runs(web, stack):
    _set(stack, status=Status.BUILDING)
    page = _page(web, stack)
    assert "(a link once the stack runs)" in page
    assert "/screen/" not in page


def test_a_viewer_watches_but_gets_no_buttons(client, viewer, running):
    client.force_login(viewer)
    page = _page(client, running)
    assert "Running" in page
    for absent in ("Extend lease", "Delete stack", "/screen/", "/serial/"):
        assert absent not in page
    assert "can extend its lease or delete it" in page


# --- the lease: countdown and "Extend by…" -------------------------------------------------------


def test_the_countdown_carries_the_lease_end_and_reads_without_scripts(web, stack):
    page = _page(web, stack)
    countdown = re.search(
        r'<time id="lease-countdown" data-countdown role="timer" datetime="([^"]+)">([^<]*)</time>', page
    )
    assert countdown is not None
    assert countdown.group(1) == stack.expires_at.isoformat()
    assert countdown.group(2).endswith(" left")  # the text without scripts: "9 minutes left"
    assert f'<time datetime="{stack.expires_at.isoformat()}">' in page  # the end itself, as a moment


def test_an_expired_lease_reads_expired_not_a_negative_time(web, stack):
    _set(stack, status=Status.RUNNING, expires_at=timezone.now() - timedelta(minutes=3))
    page = _page(web, stack)
    assert 'role="timer" datetime="' in page
    assert ">expired</time>" in page


def test_the_lease_is_set_the_chosen_time_from_now(web, stack):
    response = web.post(reverse("stack-renew-lease", args=[stack.pk]), {"lease_seconds": 4 * 3600})
    assert response.status_code == 302
    stack.refresh_from_db()
    assert abs(stack.expires_at - (timezone.now() + timedelta(hours=4))) < timedelta(seconds=5)
    # The 10-minute lease now ends 4 hours from now: 3 h 50 min later than it did.
    assert any(
        text.startswith("Lease extended by about 3 hours 50 minutes: shop now runs until") for text in _flash(response)
    )


@pytest.mark.parametrize("lease_seconds", [-3600, 0, 30, 5 * 60, "soon"])
def test_the_lease_is_never_shortened_nor_set_to_nonsense(web, stack, lease_seconds):
    before = stack.expires_at
    response = web.post(reverse("stack-renew-lease", args=[stack.pk]), {"lease_seconds": lease_seconds})
    assert response.status_code == 302
    stack.refresh_from_db()
    assert stack.expires_at == before  # 5 minutes from now would end the 10-minute lease earlier
    assert any(text.startswith("The lease was not changed.") for text in _flash(response))


def test_only_extensions_within_the_policy_are_offered_from_now_and_more_is_refused(web, stack, project):
    project.max_extension_seconds = 2 * 3600
    project.save()
    page = _page(web, stack)
    offered = re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', page)
    assert offered == [("1800", "30 minutes from now"), ("3600", "1 hour from now")]
    assert "extends a lease by at most 2 hours at a time, counted from now" in page
    assert "lets a stack live until" in page  # the longest life, stated

    before = stack.expires_at
    response = web.post(reverse("stack-renew-lease", args=[stack.pk]), {"lease_seconds": 4 * 3600})
    stack.refresh_from_db()
    assert stack.expires_at == before
    assert any("may now be extended until" in text for text in _flash(response))


def test_the_longest_life_bounds_what_is_offered(web, stack, project):
    project.max_lease_seconds = 2 * 3600
    project.save()
    stack.refresh_from_db()
    form = ExtendLeaseForm(stack=stack)
    assert [seconds for seconds, _label in form.choices] == [1800, 3600]
    assert form.most_seconds <= (stack.created_at + timedelta(hours=2) - LIMIT_MARGIN - form.now).total_seconds()


def test_the_default_extension_is_an_hour_unless_less_is_allowed(stack, project):
    form = ExtendLeaseForm(stack=stack)
    assert form.fields["lease_seconds"].initial == 3600
    project.max_extension_seconds = 50 * 60
    project.save()
    stack.refresh_from_db()
    form = ExtendLeaseForm(stack=stack)
    assert [seconds for seconds, _label in form.choices] == [1800]
    assert form.fields["lease_seconds"].initial == 1800


def test_a_lease_at_the_limit_offers_no_extension(web, stack, project):
    project.max_lease_seconds = 600
    project.save()
    page = _page(web, stack)
    assert "Extend lease" not in page
    assert "It cannot be extended further." in page


def test_an_expired_lease_is_extended_from_now(stack):
    _set(stack, status=Status.RUNNING, expires_at=timezone.now() - timedelta(minutes=5))
    form = ExtendLeaseForm({"lease_seconds": 3600}, stack=stack)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["new_end"] > timezone.now() + timedelta(minutes=59)


# --- delete: a confirm step, then a message --------------------------------------------------------


def test_delete_asks_first_in_a_dialog_or_on_its_own_page(web, stack):
    page = _page(web, stack)
    delete_url = reverse("stack-delete", args=[stack.pk])
    assert f'href="{delete_url}" data-bs-toggle="modal" data-bs-target="#delete-stack-dialog"' in page
    assert 'id="delete-stack-dialog"' in page
    assert f'action="{delete_url}"' in page

    confirm = web.get(delete_url)  # what the link opens without scripts
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Delete shop?" in text
    assert "This cannot be undone." in text
    stack.refresh_from_db()
    assert stack.status == Status.PENDING  # asking deleted nothing


def test_deleting_shows_a_message_and_the_confirm_page_of_a_deleted_stack_goes_back(
    web, stack, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(reverse("stack-delete", args=[stack.pk]))
    assert response.status_code == 302
    assert "Stack shop is being deleted with its disks and network." in _flash(response)
    stack.refresh_from_db()
    assert stack.status == Status.DELETED
    again = web.get(reverse("stack-delete", args=[stack.pk]))
    assert again.status_code == 302
    assert again["Location"] == reverse("stack-detail", args=[stack.pk])


def test_outsiders_cannot_reach_the_confirm_step(client, outsider, stack):
    client.force_login(outsider)
    assert client.get(reverse("stack-delete", args=[stack.pk])).status_code == 404
    assert client.post(reverse("stack-renew-lease", args=[stack.pk]), {"lease_seconds": 3600}).status_code == 404


# --- the list ------------------------------------------------------------------------------------


def test_the_list_answers_htmx_with_its_table_body_only(web, stack):
    response = web.get(reverse("stack-list"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert '<tbody id="stack-rows"' in body
    assert "<html" not in body
    assert "Quotas" not in body
    assert "shop" in body
    assert "HX-Request" in response["Vary"]


def test_the_list_listens_to_its_socket_and_polls_slowly(web, stack, settings):
    settings.REDIS_URL = ""
    assert 'hx-trigger="every 10s"' in web.get(reverse("stack-list")).content.decode()
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    page = web.get(reverse("stack-list")).content.decode()
    assert 'hx-trigger="stacks-changed, every 60s"' in page
    assert 'data-live-socket="/ws/stacks/" data-live-event="stacks-changed"' in page
    assert "/static/js/live_socket.js" in page


def test_the_list_narrows_to_one_project(client, operator, stack, other_project, test_host, ready_version):
    launch.stack_launch(
        user=operator, project=other_project, name="theirs", appliance_version=ready_version, lease_seconds=600
    )
    client.force_login(operator)
    page = client.get(reverse("stack-list"), {"project": other_project.pk}).content.decode()
    assert "theirs" in page
    assert ">shop<" not in page
    assert f'hx-get="{reverse("stack-list")}?project={other_project.pk}"' in page


def test_the_only_project_is_already_chosen_even_for_a_shared_template(member, project):
    form = TemplateLaunchForm(user=member, initial={"project": None})
    assert form["project"].value() == project.pk

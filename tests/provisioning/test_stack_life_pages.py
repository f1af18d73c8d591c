"""The stack page's actions after launch, as people use them: power, shelve, snapshots, extend.

On libvirt's test driver with tasks run inline (``step``): a click runs the job before the page comes
back. Members and owners act, viewers read, other projects see nothing; the service decides and the
page says its refusal next to the controls that were used.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.models import RunEnd
from provisioning.models import Host, Stack, StackSnapshot, Status
from provisioning.services import launch


@pytest.fixture(autouse=True)
def polled_pages_and_quick_power_cuts(settings):
    settings.SHUTDOWN_TIMEOUT_SECONDS = 1  # a guest of the test driver that ignores the button is cut at once
    settings.REDIS_URL = ""  # the page polls (no socket): its re-read interval says whether it is settling


@pytest.fixture
def web(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def act(step):
    """``act(client, route, *args, data=...)``: a POST from the page, its job run, the page it leads to."""

    def post(client, route: str, *args, data: dict | None = None):
        # The job runs once the POST's transaction commits (at the end of ``step``): the page is read after.
        response = step(lambda: client.post(reverse(route, args=args), data or {}))
        return client.get(response.url) if response.status_code == 302 else response

    return post


def _page(client, stack: Stack) -> str:
    response = client.get(reverse("stack-detail", args=[stack.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _text(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def _notes(page: str, place: str) -> str:
    """What the page shows next to the controls at ``place`` (its notes up to the end of their section)."""
    start = page.index(f'id="{place}-notes"')
    return page[start : page.index("</section>", start)]


def _top(page: str) -> str:
    """The page's general messages: what comes before its breadcrumb."""
    return page[: page.index('aria-label="Breadcrumb"')]


def _status(stack: Stack) -> str:
    stack.refresh_from_db()
    return stack.status


def _set(stack: Stack, **fields) -> Stack:
    Stack.objects.filter(pk=stack.pk).update(**fields)
    stack.refresh_from_db()
    return stack


def _action_routes(stack: Stack, snapshot: StackSnapshot) -> list[tuple[str, tuple, dict]]:
    instance = stack.instances.get(role="db")
    return [
        ("stack-power", (stack.pk, "shutdown"), {}),
        ("stack-power", (stack.pk, "poweroff"), {}),
        ("stack-power", (stack.pk, "reboot"), {}),
        ("stack-power", (stack.pk, "start"), {}),
        ("instance-power", (stack.pk, instance.pk, "poweroff"), {}),
        ("stack-shelve", (stack.pk,), {"memory": "on"}),
        ("stack-unshelve", (stack.pk,), {}),
        ("stack-snapshot-create", (stack.pk,), {"name": "mine"}),
        ("stack-snapshot-revert", (stack.pk, snapshot.pk), {}),
        ("stack-snapshot-delete", (stack.pk, snapshot.pk), {}),
        ("stack-extend", (stack.pk,), {}),
    ]


def _ready_snapshot(stack: Stack, name: str = "kept") -> StackSnapshot:
    return StackSnapshot.objects.create(
        stack=stack, name=name, libvirt_name=f"x-{name}", status=StackSnapshot.State.READY, size_bytes=3 * 1024**2
    )


# --- refusals first ------------------------------------------------------------------------------


def test_a_viewer_gets_no_buttons_and_their_posts_change_nothing(client, viewer, shop, act):
    snapshot = _ready_snapshot(shop)
    client.force_login(viewer)
    page = _page(client, shop)
    assert "You can watch this stack" in page
    assert "kept" in page  # a viewer reads the snapshots
    for absent in ("/power/", "/shelve/", "/snapshots/", "/extend/", "Take snapshot", "Revert…", "Extend lease"):
        assert absent not in page
    before = shop.expires_at
    for route, args, data in _action_routes(shop, snapshot):
        page = _text(act(client, route, *args, data=data))
        assert "this needs the member role in project alpha: ask one of its owners" in page, route
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert shop.expires_at == before
    assert list(StackSnapshot.objects.values_list("name", "status")) == [("kept", "ready")]
    assert {i.status for i in shop.instances.all()} == {Status.RUNNING}


def test_an_outsider_is_told_there_is_no_such_stack(client, outsider, other_project, shop, ready_version, step):
    snapshot = _ready_snapshot(shop)
    client.force_login(outsider)
    for route, args, data in _action_routes(shop, snapshot):
        assert client.post(reverse(route, args=args), data).status_code == 404, route
    # Their own stack's address with the shop's snapshot or instance in it finds nothing either.
    theirs = launch.stack_launch(
        user=outsider, project=other_project, name="theirs", appliance_version=ready_version, lease_seconds=600
    )
    db = shop.instances.get(role="db")
    for route, args in (
        ("stack-snapshot-revert", (theirs.pk, snapshot.pk)),
        ("stack-snapshot-delete", (theirs.pk, snapshot.pk)),
        ("instance-power", (theirs.pk, db.pk, "poweroff")),
    ):
        assert client.post(reverse(route, args=args)).status_code == 404, route
    assert _status(shop) == Status.RUNNING
    assert StackSnapshot.objects.get().status == StackSnapshot.State.READY


def test_actions_answer_posts_only_and_unknown_power_words_are_no_address(web, shop):
    assert web.get(reverse("stack-power", args=[shop.pk, "shutdown"])).status_code == 405
    assert web.get(reverse("stack-extend", args=[shop.pk])).status_code == 405
    assert web.post(f"/stacks/{shop.pk}/power/explode/").status_code == 404
    assert _status(shop) == Status.RUNNING


def test_a_snapshot_name_error_shows_next_to_the_field(web, shop, act):
    page = _text(act(web, "stack-snapshot-create", shop.pk, data={"name": "Bad Name!"}))
    error = re.search(r'<div class="invalid-feedback d-block" id="snapshot-name_error">([^<]*)</div>', page)
    assert error is not None
    assert error.group(1).startswith("Name must be 1-40 lowercase letters")
    assert 'value="Bad Name!"' in page  # what was typed stays, to be corrected
    assert not StackSnapshot.objects.exists()

    act(web, "stack-snapshot-create", shop.pk, data={"name": "first"})
    page = _text(act(web, "stack-snapshot-create", shop.pk, data={"name": "first"}))
    error = re.search(r'id="snapshot-name_error">([^<]*)</div>', page)
    assert error is not None
    assert error.group(1) == "This stack already has a snapshot called &#x27;first&#x27;"
    assert StackSnapshot.objects.count() == 1


def test_a_snapshot_of_a_shelved_stack_is_refused_in_the_snapshots_card(web, shop, act):
    act(web, "stack-shelve", shop.pk, data={"memory": "on"})
    page = _text(act(web, "stack-snapshot-create", shop.pk, data={"name": "late"}))
    card = page[page.index('id="snapshots-heading"') : page.index('id="lease-heading"')]
    assert "cannot snapshot a stack that is shelved (only one that is running, stopped)" in card
    assert 'id="snapshot-take"' not in card  # no form for a shelved stack, the refusal still said
    assert not StackSnapshot.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(member, shop):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post(reverse("stack-power", args=[shop.pk, "poweroff"])).status_code == 403
    assert _status(shop) == Status.RUNNING


def test_a_snapshot_over_the_disk_quota_is_refused_on_the_form(web, shop, project, act):
    from provisioning.quotas import project_usage

    project.max_disk_gib = next(line.used for line in project_usage(project) if line.key == "disk_gib")
    project.save()
    page = _text(act(web, "stack-snapshot-create", shop.pk, data={"name": "full"}))
    form = page[page.index('id="snapshot-form-heading"') :]
    assert "GiB of disk" in form[: form.index("</form>")]
    assert not StackSnapshot.objects.exists()


def test_an_action_the_status_does_not_allow_is_refused_next_to_the_buttons(web, shop, act):
    page = _text(act(web, "stack-unshelve", shop.pk))
    expected = "Could not unshelve shop: cannot unshelve a stack that is running (only one that is shelved)."
    assert expected in _notes(page, "actions")
    assert expected not in _top(page)
    assert _status(shop) == Status.RUNNING


def test_a_busy_stack_shows_disabled_buttons_a_working_note_and_is_re_read_often(web, shop, act):
    _ready_snapshot(shop)
    _set(shop, status=Status.STOPPING, status_before=Status.RUNNING)
    page = _page(web, shop)
    assert "Working: stopping." in page
    assert 'hx-trigger="every 2s"' in page
    actions = page[page.index('id="actions-heading"') : page.index('id="snapshots-heading"')]
    assert "<fieldset disabled>" in actions
    assert 'id="stack-shutdown"' in actions  # the buttons of the status it came from, disabled
    assert re.search(r'id="revert-\d+"[^>]*disabled', page)
    assert re.search(r'id="power-poweroff-\d+"[^>]*disabled', page)
    assert 'id="extend-lease"' in page
    assert "Delete stack…</button>" in page  # a disabled button, not the dialog's link

    fragment = web.get(reverse("stack-status", args=[shop.pk])).content.decode()
    assert 'id="stack-actions" hx-swap-oob="true"' in fragment
    assert "Working: stopping." in fragment

    page = _text(act(web, "stack-shelve", shop.pk, data={"memory": "on"}))
    assert "Could not shelve shop: the stack is stopping: wait until that is done." in _notes(page, "actions")
    assert _status(shop) == Status.STOPPING


def test_a_failed_job_is_said_at_the_top_of_the_status(web, shop, act):
    Host.objects.filter(pk=shop.instances.first().host_id).update(uri="qemu+tcp://127.0.0.1:1/system")
    page = _text(act(web, "stack-power", shop.pk, "shutdown"))
    assert _status(shop) == Status.RUNNING
    assert re.search(r'id="last-failure">The last action failed, <time[^>]*>[^<]*</time>: shutdown failed:', page)


# --- power ---------------------------------------------------------------------------------------


def test_shut_down_and_start_from_the_page(web, shop, act):
    page = _page(web, shop)
    for button in ("stack-shutdown", "stack-poweroff", "stack-reboot", "stack-shelve"):
        assert f'id="{button}"' in page
    assert 'id="stack-start"' not in page

    page = _text(act(web, "stack-power", shop.pk, "shutdown"))
    assert _status(shop) == Status.STOPPED
    assert "Shutting down shop: each tier is asked to power off" in _notes(page, "actions")
    assert '<span class="badge text-bg-light border">Stopped</span>' in page
    assert 'id="stack-start"' in page
    assert 'id="stack-shutdown"' not in page
    assert 'id="stack-shelve"' in page  # a stopped stack may be shelved too

    page = _text(act(web, "stack-power", shop.pk, "start"))
    assert _status(shop) == Status.RUNNING
    assert "Starting shop: its tiers start in dependency order" in _notes(page, "actions")


def test_power_off_and_reboot_from_the_page(web, shop, act):
    page = _text(act(web, "stack-power", shop.pk, "reboot"))
    assert _status(shop) == Status.RUNNING
    assert "Rebooting shop" in _notes(page, "actions")
    page = _text(act(web, "stack-power", shop.pk, "poweroff"))
    assert _status(shop) == Status.STOPPED
    assert "Powering off shop" in _notes(page, "actions")


def test_one_instance_is_powered_from_its_row(web, shop, act):
    db = shop.instances.get(role="db")
    page = _page(web, shop)
    row = page[page.index(f'id="power-shutdown-{db.pk}"') - 400 :]
    assert f'action="{reverse("instance-power", args=[shop.pk, db.pk, "poweroff"])}"' in row
    assert f'id="power-reboot-{db.pk}"' in page
    assert '<span class="visually-hidden"> shop-db</span>' in page  # each button names its instance

    page = _text(act(web, "instance-power", shop.pk, db.pk, "poweroff"))
    db.refresh_from_db()
    assert db.status == Status.STOPPED
    assert _status(shop) == Status.RUNNING  # the others still run
    assert "Powering off shop-db." in _notes(page, "tiers")
    assert f'id="power-start-{db.pk}"' in page
    assert f'id="power-shutdown-{db.pk}"' not in page

    act(web, "instance-power", shop.pk, db.pk, "start")
    db.refresh_from_db()
    assert db.status == Status.RUNNING


# --- shelve --------------------------------------------------------------------------------------


def test_shelve_keeping_memory_then_unshelve(web, shop, act):
    page = _page(web, shop)
    assert re.search(r'<input type="checkbox" name="memory"[^>]*id="shelve-memory"[^>]*checked', page)

    page = _text(act(web, "stack-shelve", shop.pk, data={"memory": "on"}))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    assert shop.shelved_with_memory
    assert "Shelving shop: its guests&#x27; memory is saved on the host" in _notes(page, "actions")
    assert "its vCPUs and memory are released" in page
    assert "Deleted at the end of its storage lease" in page
    assert 'id="stack-unshelve"' in page
    for absent in ('id="stack-shelve"', 'id="stack-start"', 'id="snapshot-take"'):
        assert absent not in page

    page = _text(act(web, "stack-unshelve", shop.pk))
    assert _status(shop) == Status.RUNNING
    assert "Unshelving shop" in _notes(page, "actions")


def test_shelve_without_memory_shuts_the_guests_down(web, shop, act):
    act(web, "stack-shelve", shop.pk)  # the checkbox left unticked sends nothing
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED
    assert not shop.shelved_with_memory


def test_unshelve_over_quota_is_refused_in_words(web, shop, project, act):
    act(web, "stack-shelve", shop.pk, data={"memory": "on"})
    project.max_vcpus = 1
    project.save()
    page = _text(act(web, "stack-unshelve", shop.pk))
    notes = _notes(page, "actions")
    assert "Could not unshelve shop: quota exceeded: project &#x27;alpha&#x27; may hold 1 vCPUs" in notes
    assert "unshelving it needs" in notes
    assert _status(shop) == Status.SHELVED


# --- snapshots -----------------------------------------------------------------------------------


def test_take_revert_and_delete_a_snapshot(web, shop, act):
    page = _page(web, shop)
    suggested = re.search(r'id="snapshot-name"', page) and re.search(r'name="name" value="(snap-\d{8}-\d{4})"', page)
    assert suggested, "a name is suggested"

    page = _text(act(web, "stack-snapshot-create", shop.pk, data={"name": "before-upgrade", "memory": "on"}))
    snapshot = StackSnapshot.objects.get()
    assert snapshot.status == StackSnapshot.State.READY, snapshot.status_reason
    assert "Taking snapshot before-upgrade of every tier, with memory." in _notes(page, "snapshots")
    item = page[page.index(f'id="snapshot-{snapshot.pk}"') :]
    assert '<h3 class="h6 mb-0 text-break">before-upgrade</h3>' in item
    assert '<span class="badge text-bg-success">Ready</span>' in item
    assert "memory: yes" in item
    assert f'<time datetime="{snapshot.created_at.isoformat()}">' in item
    # The revert dialog says what is lost before anything is.
    dialog = page[page.index(f'id="revert-dialog-{snapshot.pk}"') :]
    assert "Revert shop to before-upgrade?" in dialog
    assert "Everything since then is lost" in dialog

    page = _text(act(web, "stack-snapshot-revert", shop.pk, snapshot.pk))
    assert _status(shop) == Status.RUNNING
    assert "Reverting shop to snapshot before-upgrade" in _notes(page, "snapshots")
    assert shop.events.filter(message="reverted to snapshot 'before-upgrade'").exists()

    assert f'id="delete-snapshot-dialog-{snapshot.pk}"' in page
    page = _text(act(web, "stack-snapshot-delete", shop.pk, snapshot.pk))
    assert "Deleting snapshot before-upgrade from every tier." in _notes(page, "snapshots")
    assert not StackSnapshot.objects.exists()
    assert "No snapshots yet." in page


def test_a_snapshot_size_reads_as_a_size(web, shop):
    _ready_snapshot(shop, "sized")
    page = _page(web, shop)
    assert "3.0\xa0MB · memory: no" in page


# --- the lease -----------------------------------------------------------------------------------


def test_extend_goes_as_far_as_the_policy_allows_from_now(web, shop, project, act):
    project.max_extension_seconds = 3600
    project.save()
    _set(shop, expires_at=timezone.now() + timedelta(minutes=10))  # less than one extension
    page = _page(web, shop)
    assert "It may be extended until" in page
    assert "extends a lease by at most 1 hour at a time, counted from now" in page

    page = _text(act(web, "stack-extend", shop.pk))
    shop.refresh_from_db()
    assert abs(shop.expires_at - (timezone.now() + timedelta(hours=1))) < timedelta(seconds=5)
    assert "Lease extended by about 50 minutes: shop now runs until" in _notes(page, "lease")
    assert 'id="extend-lease"' not in page  # an hour from now is as far as it goes now
    assert "It cannot be extended now" in page


def test_extend_at_the_longest_life_is_refused_in_words(web, shop, project, act):
    project.max_lease_seconds = 3600
    project.save()
    end = _set(shop, expires_at=shop.created_at + timedelta(hours=1)).expires_at
    page = _page(web, shop)
    assert 'id="extend-lease"' not in page
    assert "The lease already reaches the longest its project allows. It cannot be extended further." in page
    page = _text(act(web, "stack-extend", shop.pk))
    assert _set(shop).expires_at == end
    assert "Could not extend the lease: this stack&#x27;s lease cannot be extended" in _notes(page, "lease")


@pytest.mark.parametrize(("at_run_end", "said"), [(RunEnd.SHELVE, "shelved"), (RunEnd.DELETE, "deleted")])
def test_the_page_says_what_the_end_of_the_lease_does(web, shop, project, at_run_end, said):
    project.at_run_end = at_run_end
    project.save()
    page = _page(web, shop)
    assert f", then the stack is {said}:" in page
    _set(shop, expires_at=timezone.now() - timedelta(minutes=1))
    assert f"The stack is {said} within a minute or two." in _page(web, shop)


# --- the list ------------------------------------------------------------------------------------


def test_the_list_shows_the_new_statuses(web, shop, act):
    act(web, "stack-power", shop.pk, "shutdown")
    rows = web.get(reverse("stack-list"), HTTP_HX_REQUEST="true").content.decode()
    assert '<span class="badge text-bg-light border">Stopped</span>' in rows
    act(web, "stack-shelve", shop.pk, data={"memory": "on"})
    rows = web.get(reverse("stack-list"), HTTP_HX_REQUEST="true").content.decode()
    assert '<span class="badge text-bg-primary">Shelved</span>' in rows
    assert "end of its storage lease" in rows
    _set(shop, status=Status.SNAPSHOTTING, status_before=Status.SHELVED)
    rows = web.get(reverse("stack-list"), HTTP_HX_REQUEST="true").content.decode()
    assert '<span class="badge text-bg-info">Snapshotting</span>' in rows

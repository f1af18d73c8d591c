"""A stack's life from its page in a real browser, at phone and desktop widths: stop, start, power one
tier, snapshot, revert, shelve, unshelve and extend, each page fitting the window with no
accessibility violation and no script error.

The stack is launched before the server is forked, so the server's copy of libvirt's test driver
holds its domains (the test driver keeps ``test:///default`` in the memory of the process); the
server runs each job inline, so every click comes back once its job is done.
"""

from __future__ import annotations

import re

import pytest

from provisioning.models import Stack, StackSnapshot, Status
from provisioning.services.launch import stack_launch_template
from tests.browser_pages import (
    assert_fits_the_window,
    new_page,
    serious_accessibility_violations,
    sign_in,
    wait_for_open_dialog,
)

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 768}}


@pytest.fixture
def shop(transactional_db, settings, member, project, classic, test_host, demo_catalog):
    """The classic three tiers, running; asked for before the server so that its fork holds the domains.

    Not the shared ``shop``: the server sees only committed rows (a transactional database, where the
    launch's jobs run as it commits), and its settings must be in place before it is forked.
    """
    settings.SHUTDOWN_TIMEOUT_SECONDS = 1
    settings.REDIS_URL = ""  # the page polls; no channel layer to share with the forked server
    stack = stack_launch_template(user=member, project=project, name="shop", template=classic, lease_seconds=600)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    return stack


def _check(page) -> None:
    page.wait_for_load_state("networkidle")
    assert_fits_the_window(page)
    assert serious_accessibility_violations(page) == []
    assert page.script_errors == [], page.script_errors


def _status(page) -> str:
    return page.locator("#stack-status .badge").first.inner_text()


def _click_and_wait(page, locator, stack: Stack) -> None:
    """Submit one of the page's forms and wait for the stack page it leads back to."""
    with page.expect_navigation():
        locator.click()
    assert page.url.endswith(f"/stacks/{stack.pk}/")


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_a_stack_lives_its_life_from_its_page(shop, chromium, live_portal, member, width):
    page = new_page(chromium, width)
    page.set_viewport_size(SIZES[width])
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/{shop.pk}/")
    assert _status(page) == "Running"
    _check(page)

    _click_and_wait(page, page.get_by_role("button", name="Shut down", exact=True), shop)
    assert _status(page) == "Stopped"
    assert "Shutting down shop" in page.locator("#actions-notes").inner_text()
    _check(page)

    _click_and_wait(page, page.get_by_role("button", name="Start", exact=True), shop)
    assert _status(page) == "Running"
    _check(page)

    # One tier alone, from its row (the table scrolls sideways on a phone).
    _click_and_wait(page, page.get_by_role("button", name="Power off shop-db"), shop)
    assert "Powering off shop-db." in page.locator("#tiers-notes").inner_text()
    assert _status(page) == "Running"
    _check(page)
    _click_and_wait(page, page.get_by_role("button", name="Start shop-db"), shop)

    page.get_by_label("Name", exact=True).fill("journey")
    page.get_by_label("Include memory").check()
    _click_and_wait(page, page.get_by_role("button", name="Take snapshot"), shop)
    assert _status(page) == "Running"
    snapshot = page.locator(f"#snapshot-{StackSnapshot.objects.get(name='journey').pk}")
    assert "Ready" in snapshot.inner_text()
    assert "memory: yes" in snapshot.inner_text()
    _check(page)

    page.get_by_role("button", name="Revert… to journey").click()
    dialog = wait_for_open_dialog(page)
    assert dialog.get_by_role("heading").inner_text() == "Revert shop to journey?"
    assert "Everything since then is lost" in dialog.inner_text()
    _check(page)
    _click_and_wait(page, dialog.get_by_role("button", name="Revert to journey"), shop)
    assert _status(page) == "Running"
    assert "Reverting shop to snapshot journey" in page.locator("#snapshots-notes").inner_text()
    _check(page)

    assert page.get_by_label("Keep memory").is_checked()
    _click_and_wait(page, page.get_by_role("button", name="Shelve", exact=True), shop)
    assert _status(page) == "Shelved"
    assert "its vCPUs and memory are released" in page.locator("#shelved-note").inner_text()
    _check(page)

    _click_and_wait(page, page.get_by_role("button", name="Unshelve"), shop)
    assert _status(page) == "Running"
    _check(page)

    before = page.locator("#lease-countdown").get_attribute("datetime")
    _click_and_wait(page, page.get_by_role("button", name="Extend lease"), shop)
    assert "Lease extended by about" in page.locator("#lease-notes").inner_text()
    assert page.locator("#lease-countdown").get_attribute("datetime") != before
    assert _status(page) == "Running"
    _check(page)
    # What it has cost so far, in the deployment's currency (nothing sampled yet in a fresh test).
    assert re.fullmatch(r"Cost so far: \d+\.\d\d [A-Z]{3}", page.locator("#stack-cost").inner_text().strip())

    shop.refresh_from_db()
    assert shop.status == Status.RUNNING


# A re-read of the live part as its poll makes it (the same request, the same swaps).
REREAD = (
    "() => htmx.ajax('GET', document.getElementById('stack-status').getAttribute('hx-get'), "
    "{source: '#stack-status', target: '#stack-status', swap: 'outerHTML'})"
)
MARK_COLUMN = "() => { window.markedColumn = document.getElementById('stack-actions'); }"
SAME_COLUMN = "() => document.getElementById('stack-actions') === window.markedColumn"


def _reread(page) -> None:
    with page.expect_response(lambda response: response.url.endswith("/status/")):
        page.evaluate(REREAD)
    page.wait_for_load_state("networkidle")


def test_a_re_read_keeps_what_is_typed_and_never_pulls_the_column_from_under_a_dialog(
    shop, chromium, live_portal, member
):
    page = new_page(chromium, "desktop")
    page.set_viewport_size(SIZES["desktop"])
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/{shop.pk}/")
    page.wait_for_load_state("networkidle")
    name = page.get_by_label("Name", exact=True)

    # Nothing changed: the column is left alone, half-typed name and all.
    name.fill("half-typ")
    page.evaluate(MARK_COLUMN)
    _reread(page)
    assert page.evaluate(SAME_COLUMN)
    assert name.input_value() == "half-typ"

    # Something changed under an open dialog: the column waits until the dialog is closed.
    first = StackSnapshot.objects.create(stack=shop, name="first", libvirt_name="x1", status="ready")
    _reread(page)
    page.get_by_role("button", name="Revert… to first").click()
    dialog = wait_for_open_dialog(page)
    second = StackSnapshot.objects.create(stack=shop, name="second", libvirt_name="x2", status="ready")
    page.evaluate(MARK_COLUMN)
    _reread(page)
    assert page.evaluate(SAME_COLUMN)
    assert page.locator("#snapshots-heading ~ ul h3").all_inner_texts() == ["first"]
    assert dialog.is_visible()
    with page.expect_response(lambda response: response.url.endswith("/status/")):
        page.keyboard.press("Escape")
    page.locator(f"#snapshot-{second.pk}").wait_for()
    assert page.locator("#snapshots-heading ~ ul h3").all_inner_texts() == ["second", "first"]
    assert page.locator(".modal-backdrop").count() == 0

    # Something changed while a name was typed: the column is new, the name carried over.
    name.fill("kept-name")
    StackSnapshot.objects.filter(pk=first.pk).delete()
    page.evaluate(MARK_COLUMN)
    _reread(page)
    assert not page.evaluate(SAME_COLUMN)
    assert page.locator("#snapshots-heading ~ ul h3").all_inner_texts() == ["second"]
    assert name.input_value() == "kept-name"
    assert page.script_errors == []

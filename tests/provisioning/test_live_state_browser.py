"""The stack page's live part keeps to the stack's state, and the page says when it is not live.

A banner of a step ("being deleted") goes once the worker has taken the stack past it, and the tiers
never read Running under a deleted stack. When the page's socket drops (or, without sockets, its poll
cannot reach the server), a notice says the updates are paused (or, the browser offline, since when);
once the part is re-read, the notice goes and the page shows what changed meanwhile.

Uses the browser fixtures of ``tests/browser`` (Debian's Chromium, a forked daphne) and a Redis channel
layer shared by the server and this process, which plays the worker.
"""

from __future__ import annotations

import re

import pytest
from django_q.conf import Conf

from provisioning.models import Stack, Status
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch
from tests.browser_pages import assert_fits_the_window, new_page, serious_accessibility_violations, sign_in
from tests.provisioning.test_stack_pages_browser import _as_worker, _wait, redis_layer  # noqa: F401

pytestmark = [pytest.mark.xdist_group("browser-live-state")]

PAUSED = "Live updates paused: reconnecting…"


@pytest.fixture
def running(transactional_db, member, project, test_host, ready_version) -> Stack:
    stack = stack_launch(user=member, project=project, name="shop", appliance_version=ready_version, lease_seconds=3600)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING
    return stack


@pytest.fixture
def queued_tasks(running, monkeypatch):
    """From here on tasks wait in the queue (no worker takes them): the test runs them as the worker.
    Set before the server is forked, so the server queues too."""
    monkeypatch.setattr(Conf, "SYNC", False)


class Sockets:
    """The stack page's sockets, each passed through to the server; ``blocked`` refuses new ones."""

    def __init__(self, page) -> None:
        self.routes: list = []
        self.blocked = False
        page.route_web_socket(re.compile(r".*/ws/stacks/\d+/$"), self._route)

    def _route(self, route) -> None:
        if self.blocked:
            route.close(code=1011, reason="server unreachable")
            return
        route.connect_to_server()
        self.routes.append(route)

    def drop(self) -> None:
        for route in self.routes:
            route.close(code=1011, reason="server went away")


def _status_of(page) -> str:
    return page.locator("#stack-status").get_attribute("data-status")


def test_the_banner_and_the_tiers_follow_the_stack_to_its_end(
    redis_layer,  # noqa: F811
    running,
    queued_tasks,
    chromium,
    live_portal,
    member,
):
    page = new_page(chromium, "phone")
    sockets = Sockets(page)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/{running.pk}/")
    _wait(page, lambda: len(sockets.routes) == 1, "the stack's socket to open")

    page.get_by_role("link", name="Delete stack…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete shop").click()
    page.wait_for_url(f"{live_portal}/stacks/{running.pk}/")
    banner = page.locator("#main > .alert", has_text="being deleted")
    banner.wait_for()
    assert _status_of(page) == Status.DELETING
    tiers = page.locator("#stack-status .badge").all_inner_texts()
    assert "Running" not in tiers, tiers
    _wait(page, lambda: len(sockets.routes) == 2, "the reloaded page's socket to open")
    page.wait_for_load_state("networkidle")

    # The worker tears the stack down; its announcement makes the page re-read the live part.
    _as_worker(lambda: lifecycle.stack_teardown(stack=Stack.objects.get(pk=running.pk)))
    page.wait_for_function("() => document.getElementById('stack-status').dataset.status === 'deleted'")
    banner.wait_for(state="detached", timeout=5_000)
    assert "Running" not in page.locator("main").inner_text()
    assert page.locator("#stack-announcer").inner_text() == "Status changed: shop: Deleted"
    assert page.locator("#live-status").inner_text() == ""  # nothing was ever paused
    assert page.script_errors == []


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_a_dropped_connection_is_shown_until_the_page_is_current_again(
    redis_layer,  # noqa: F811
    running,
    chromium,
    live_portal,
    member,
    width,
):
    page = new_page(chromium, width)
    sockets = Sockets(page)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/{running.pk}/")
    _wait(page, lambda: len(sockets.routes) == 1, "the stack's socket to open")
    page.wait_for_load_state("networkidle")
    notice = page.locator("#live-status")
    assert notice.inner_text() == ""
    assert notice.get_attribute("role") == "status"

    # The server goes away while the browser stays online: the page says it keeps trying.
    sockets.blocked = True
    sockets.drop()
    page.get_by_text(PAUSED).wait_for(timeout=5_000)
    assert re.search(r"Since \d\d:\d\d \S+\. What the page shows may be out of date\.", notice.inner_text())
    assert_fits_the_window(page)
    assert serious_accessibility_violations(page) == []

    # The browser goes offline too: the notice says since when.
    page.context.set_offline(True)
    page.wait_for_function(
        "() => /Offline since \\d\\d:\\d\\d/.test(document.getElementById('live-status').textContent)"
    )
    # Meanwhile the stack fails, and nothing reaches the page.
    Stack.objects.filter(pk=running.pk).update(status=Status.ERROR, status_reason="disk full")
    page.wait_for_timeout(500)
    assert _status_of(page) == Status.RUNNING

    # Back online, the socket reopens at once and the part is re-read: the notice goes, the failure shows.
    sockets.blocked = False
    page.context.set_offline(False)
    page.get_by_text("Live updates are back: the page shows the current state.").wait_for(timeout=10_000)
    assert _status_of(page) == Status.ERROR
    assert "disk full" in page.locator("#stack-status").inner_text()
    assert PAUSED not in notice.inner_text()
    page.wait_for_function("() => document.getElementById('live-status').textContent === ''", timeout=10_000)
    assert page.script_errors == []


@pytest.fixture
def pending(transactional_db, member, project, test_host, ready_version, monkeypatch, settings) -> Stack:
    """A stack whose build waits in the queue, on a portal without a channel layer (set before the server
    is forked): its page re-reads itself every 2 s."""
    settings.REDIS_URL = ""
    monkeypatch.setattr(Conf, "SYNC", False)
    stack = stack_launch(user=member, project=project, name="slow", appliance_version=ready_version, lease_seconds=600)
    assert stack.status == Status.PENDING
    return stack


def test_a_polled_page_says_it_is_offline_until_a_re_read_arrives(pending, chromium, live_portal, member):
    page = new_page(chromium, "phone")
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/{pending.pk}/")
    assert page.locator("#stack-status").get_attribute("data-live-socket") is None
    page.wait_for_load_state("networkidle")

    page.context.set_offline(True)
    page.get_by_text(re.compile(r"^Offline since \d\d:\d\d \S+\.$")).wait_for(timeout=10_000)
    Stack.objects.filter(pk=pending.pk).update(status=Status.BUILDING, status_reason="copying disks")

    page.context.set_offline(False)
    page.get_by_text("Live updates are back: the page shows the current state.").wait_for(timeout=10_000)
    assert _status_of(page) == Status.BUILDING
    assert "copying disks" in page.locator("#stack-status").inner_text()
    assert page.script_errors == []

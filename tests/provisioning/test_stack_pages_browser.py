"""The stack pages in a real browser: they fit phones and desktops, the countdown ticks, the dialog asks,
and the stacks list follows the worker through its websocket, reconnecting when the socket drops.

Uses the browser fixtures of ``tests/browser`` (Debian's Chromium, a forked daphne).
"""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from channels.layers import channel_layers
from django.db import connections

from provisioning.models import Stack, Status
from provisioning.services import lifecycle
from provisioning.services.events import stack_event
from provisioning.services.launch import stack_launch
from tests.browser_pages import (
    assert_fits_the_window,
    new_page,
    serious_accessibility_violations,
    sign_in,
    wait_for_open_dialog,
)
from tests.provisioning.test_progress_socket import TEST_REDIS_URL


def _check(page) -> None:
    page.wait_for_load_state("networkidle")
    assert_fits_the_window(page)
    assert serious_accessibility_violations(page) == []
    assert page.script_errors == []


@pytest.fixture
def stacks(transactional_db, member, project, test_host, ready_version):
    """A running stack and a deleted one."""
    running = stack_launch(
        user=member, project=project, name="shop", appliance_version=ready_version, lease_seconds=3600
    )
    gone = stack_launch(user=member, project=project, name="old", appliance_version=ready_version, lease_seconds=3600)
    lifecycle.stack_destroy(user=member, stack=gone)
    running.refresh_from_db()
    gone.refresh_from_db()
    assert (running.status, gone.status) == (Status.RUNNING, Status.DELETED)
    return running, gone


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_stack_pages_fit_tick_and_ask_before_deleting(chromium, live_portal, stacks, member, width):
    running, gone = stacks
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    for path in ("/stacks/", f"/stacks/{running.pk}/", f"/stacks/{gone.pk}/", f"/stacks/{running.pk}/delete/"):
        page.goto(f"{live_portal}{path}")
        _check(page)

    page.goto(f"{live_portal}/stacks/{running.pk}/")
    countdown = page.locator("#lease-countdown")
    first = countdown.inner_text()
    assert first.endswith(" left")
    page.wait_for_function(f"() => document.getElementById('lease-countdown').textContent !== {first!r}")
    assert countdown.inner_text().startswith("59 min") or countdown.inner_text().startswith("1 h")

    page.get_by_role("link", name="Delete stack…").click()
    dialog = wait_for_open_dialog(page)
    assert dialog.get_by_role("heading").inner_text() == "Delete shop?"
    _check(page)
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    running.refresh_from_db()
    assert running.status == Status.RUNNING  # asking deleted nothing

    page.locator("#delete-stack-dialog").wait_for(state="hidden")
    page.get_by_role("link", name="Delete stack…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete shop").click()
    page.wait_for_url(f"{live_portal}/stacks/{running.pk}/")
    # The teardown ran before the page loaded: the page says deleted, no banner of a past state.
    page.locator("#stack-status[data-status=deleted]").wait_for()
    assert "being deleted" not in page.inner_text("main")


@pytest.fixture
def redis_layer(settings):
    """Workers and web on one Redis channel layer, as deployed: set before the server is forked."""
    settings.REDIS_URL = TEST_REDIS_URL
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [TEST_REDIS_URL], "prefix": f"test-{secrets.token_hex(4)}"},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def test_the_list_follows_the_worker_and_reconnects(redis_layer, chromium, live_portal, stacks, member):
    running, _gone = stacks
    page = new_page(chromium, "desktop")
    sockets = []

    def through(route) -> None:
        route.connect_to_server()  # messages pass both ways; the test only keeps a handle to drop it
        sockets.append(route)

    page.route_web_socket("**/ws/stacks/", through)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/")
    row = page.locator(f"#stack-row-{running.pk}")
    row.wait_for()
    _wait(page, lambda: len(sockets) == 1, "the list's socket to open")
    page.wait_for_load_state("networkidle")

    # The worker's change reaches the list within a second or two (its poll behind it waits 60 s).
    def fail() -> None:
        Stack.objects.filter(pk=running.pk).update(status=Status.ERROR, status_reason="disk full")
        stack_event(running, "disk full", is_error=True)

    _as_worker(fail)
    row.get_by_text("Error").wait_for(timeout=5_000)

    # The socket drops: it comes back by itself and re-reads the list, so a change made meanwhile shows.
    with page.expect_request(lambda request: request.headers.get("hx-request") == "true", timeout=10_000):
        sockets[0].close(code=1011, reason="server went away")
        Stack.objects.filter(pk=running.pk).update(status=Status.RUNNING, status_reason="")  # no announcement
    _wait(page, lambda: len(sockets) == 2, "the socket to come back")
    row.get_by_text("Running").wait_for(timeout=5_000)

    _as_worker(lambda: lifecycle.stack_destroy(user=member, stack=running))  # torn down at once: tasks run inline
    row.wait_for(state="detached", timeout=5_000)


def _as_worker(work) -> None:
    """Runs ``work`` in a thread of its own, as a worker would: Playwright's loop owns this thread, and an
    announcement (async_to_sync) cannot be made from a thread running an event loop."""
    failures = []

    def run() -> None:
        try:
            work()
        except Exception as exc:  # handed to the test's thread, to fail it there
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not failures, failures


def _wait(page, condition, what: str, timeout: float = 10) -> None:
    """Waits through the page, so Playwright goes on dispatching (a plain sleep would starve the route handler)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        page.wait_for_timeout(50)

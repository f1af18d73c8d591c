"""The unread badge in Chromium: counts arrive live over its socket, a dropped socket comes back (at once
when the browser is online again, else after a delay), and a refused one gives way to polling."""

from __future__ import annotations

import pytest

from notices.services import notify_stack_event
from provisioning.services.launch import stack_launch
from tests.browser_pages import new_page, sign_in
from tests.provisioning.test_stack_pages_browser import _as_worker, _wait, redis_layer  # noqa: F401 - a fixture


@pytest.mark.usefixtures("redis_layer", "transactional_db")
def test_the_badge_follows_its_socket_and_falls_back_to_polling(
    chromium, live_portal, member, project, test_host, ready_version
):
    stack = stack_launch(user=member, project=project, name="shop", appliance_version=ready_version, lease_seconds=3600)
    page = new_page(chromium, "desktop")
    notices, lists = [], []

    def through(store):
        def handler(route):
            route.connect_to_server()
            store.append(route)

        return handler

    page.route_web_socket("**/ws/notifications/", through(notices))
    page.route_web_socket("**/ws/stacks/", through(lists))
    page.clock.install()
    sign_in(page, live_portal, member)
    _wait(page, lambda: len(notices) == 1, "the dashboard's socket")
    notices.clear()
    page.goto(f"{live_portal}/stacks/")
    page.wait_for_load_state("networkidle")
    _wait(page, lambda: len(notices) == 1 and len(lists) == 1, "one socket each")
    page.wait_for_timeout(500)
    assert (len(notices), len(lists)) == (1, 1)
    assert page.evaluate("typeof window.portalSocket.keep") == "function"
    badge = page.locator("#nav-unread")
    assert badge.inner_text() == ""

    _as_worker(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    badge.get_by_text("1").wait_for(timeout=5_000)

    # Dropped: the fake clock holds the retry; coming online tries at once.
    notices[0].close(code=1011, reason="gone")
    page.wait_for_timeout(300)
    assert len(notices) == 1
    page.evaluate("window.dispatchEvent(new Event('online'))")
    _wait(page, lambda: len(notices) == 2, "online reconnect")
    # Dropped again: the jittered delay brings it back.
    notices[1].close(code=1011, reason="gone")
    page.wait_for_timeout(300)
    page.clock.run_for(5_000)
    _wait(page, lambda: len(notices) == 3, "delayed reconnect")

    # Refused: no more tries; polls every 30 s instead.
    notices[2].close(code=4003, reason="no")
    page.wait_for_timeout(300)
    _as_worker(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.clock.run_for(20_000)
    page.wait_for_timeout(300)
    assert len(notices) == 3
    assert badge.inner_text().startswith("1")
    with page.expect_request("**/notifications/badge/"):
        page.clock.run_for(15_000)
    badge.get_by_text("2").wait_for(timeout=5_000)
    assert len(notices) == 3
    assert page.script_errors == []

"""The stack page's endpoint in a real browser: "starting…" while its guest does not answer, then
"ready since" a moment, at phone and desktop widths, fitting the window and axe-clean.

Uses the browser fixtures (Debian's Chromium, a forked daphne); a loopback listener is the guest.
"""

from __future__ import annotations

import pytest

from provisioning.models import PublishedPort, Status
from provisioning.services.endpoint_probe import endpoints_sweep
from provisioning.services.launch import stack_launch
from tests.browser_pages import inspect_page, new_page, sign_in
from tests.provisioning.endpoint_guests import FakeGuestPort


@pytest.fixture
def guest(transactional_db, member, project, test_host, ready_version):
    stack = stack_launch(user=member, project=project, name="shop", appliance_version=ready_version, lease_seconds=3600)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING
    with FakeGuestPort() as fake:
        PublishedPort.objects.filter(instance__stack=stack).update(host_port=fake.port)
        yield stack, fake


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_endpoint_says_starting_then_ready_since(chromium, live_portal, guest, member, width):
    stack, fake = guest
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/{stack.pk}/")
    state = page.locator("#endpoint-state-1")
    assert state.inner_text() == "starting… not answering yet"
    assert page.locator("#endpoint-1").get_attribute("aria-describedby") == "endpoint-state-1"
    inspect_page(page, "stack-endpoint-starting", width)

    fake.answering = True
    assert endpoints_sweep() == 1
    page.reload()
    assert state.inner_text().startswith("ready since ")
    assert state.locator("time").get_attribute("datetime")
    inspect_page(page, "stack-endpoint-ready", width)

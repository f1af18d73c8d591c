"""The stack page's "Resize a tier" panel in a real browser, at phone and desktop widths: it fits, it
passes the accessibility checks, a refusal comes back on the form with its summary in view, and an
accepted resize says where it applies."""

from __future__ import annotations

import pytest

from portal.models import Project
from provisioning.services.launch import stack_launch
from tests.browser_pages import inspect_page, new_page, sign_in

pytestmark = [pytest.mark.xdist_group("browser-resize")]


@pytest.fixture
def running(transactional_db, member, project, test_host, ready_version):
    return stack_launch(user=member, project=project, name="shop", appliance_version=ready_version, lease_seconds=3600)


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_resize_form_fits_refuses_in_place_and_accepts(chromium, live_portal, running, member, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/stacks/{running.pk}/")
    panel = page.locator("#stack-resize")
    assert "Resize a tier" in panel.inner_text()
    assert "Left in project alpha's quota: 15 vCPUs" in panel.inner_text()
    assert "up to 16 vCPUs without a restart" in panel.inner_text()
    panel.scroll_into_view_if_needed()
    inspect_page(page, "stack-resize", width)

    # Over the quota: the page comes back with the form's errors, their summary in view and focused.
    Project.objects.filter(pk=running.project_id).update(max_vcpus=1)
    panel.get_by_label("vCPUs").fill("2")
    panel.get_by_role("button", name="Resize").click()
    page.wait_for_load_state("load")
    summary = page.locator("#stack-resize [data-error-summary]")
    summary.wait_for()
    assert "The tier was not resized" in summary.inner_text()
    assert "may hold 1 vCPUs" in page.locator("#stack-resize").inner_text()
    page.wait_for_function("() => document.activeElement && document.activeElement.hasAttribute('data-error-summary')")
    inspect_page(page, "stack-resize-refused", width)

    Project.objects.filter(pk=running.project_id).update(max_vcpus=16)
    page.locator("#stack-resize").get_by_label("vCPUs").fill("2")
    page.locator("#stack-resize").get_by_role("button", name="Resize").click()
    page.wait_for_load_state("load")
    assert "Resizing tier web of shop" in page.locator("body").inner_text()

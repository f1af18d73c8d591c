"""The upload page in a real browser: a small qcow2 sent in parts through tus-js-client, one part's
connection dropped on the way; the upload goes on from where the server stands, the page shows the
bytes, then follows the server's check until the version is ready and links to its appliance. The
page fits phone and desktop widths and passes the accessibility checks."""

from __future__ import annotations

import re

import pytest

from tests.browser_pages import inspect_page, new_page, sign_in
from tests.transfers.upload_helpers import qcow2_image, use_private_folders
from transfers.models import Upload

pytestmark = [pytest.mark.xdist_group("browser-upload")]

PART = 64 * 1024


@pytest.fixture
def small_parts(settings, tmp_path):
    """Set before the live server starts: its process takes the settings it was forked with."""
    use_private_folders(settings, tmp_path)
    settings.UPLOAD_CHUNK_BYTES = PART
    return tmp_path


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_an_image_sent_through_a_dropped_connection_becomes_a_ready_version(
    small_parts, chromium, live_portal, member, project, tmp_path, width
):
    image = tmp_path / "web.qcow2"
    size = len(qcow2_image(image, size="256M"))
    assert size > 3 * PART

    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/catalog/upload/")
    inspect_page(page, "upload", width)

    patches = {"seen": 0, "dropped": 0}

    def drop_the_second_part_once(route):
        if route.request.method == "PATCH":
            patches["seen"] += 1
            if patches["seen"] == 2:
                patches["dropped"] += 1
                route.abort("connectionreset")
                return
        route.continue_()

    page.route("**/api/v1/uploads/*/", drop_the_second_part_once)
    page.get_by_label("Project").select_option(str(project.pk))
    page.get_by_label("Appliance identifier").fill("browser-web")
    page.get_by_label("Version").fill("1.0")
    page.get_by_label("Service port").fill("8080")
    page.get_by_label("Role").fill("web")
    page.get_by_label("Disk image file").set_input_files(str(image))
    page.get_by_role("button", name="Upload", exact=True).click()

    outcome = page.locator("#upload-state[data-outcome]")
    outcome.wait_for(timeout=60_000)
    assert outcome.get_attribute("data-outcome") == "ready", outcome.inner_text()
    assert "Ready: browser-web 1.0 is in the catalog." in outcome.inner_text()
    numbers = page.locator("#upload-numbers").inner_text()
    assert re.match(rf"{size / 1024:.1f} KiB of {size / 1024:.1f} KiB \(100%\)", numbers), numbers
    assert page.locator("#upload-bar").get_attribute("aria-valuenow") == "100"
    assert patches["dropped"] == 1
    assert patches["seen"] > -(-size // PART)  # every part, and the dropped one again
    inspect_page(page, "upload-ready", width)

    upload = Upload.objects.get()
    assert (upload.status, upload.filename) == (Upload.Status.READY, "web.qcow2")
    # The port and role went along as metadata: the version's one-click launch publishes the port.
    assert (upload.result.service_port, upload.result.appliance.role) == (8080, "web")
    assert not list((small_parts / "uploads").iterdir())
    page.get_by_role("link", name="Open browser-web").click()
    page.wait_for_url(f"{live_portal}/catalog/appliances/{upload.result.appliance_id}/")
    # The version is ready there, with a Launch button like any other.
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="1.0", exact=True))
    assert "Ready" in row.inner_text()
    assert row.get_by_role("link", name="Launch browser-web 1.0").is_visible()

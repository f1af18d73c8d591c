"""The catalog in and out on real VMs, as a member does it through the pages, in Chromium.

Upload the demo web appliance's disk image on the upload page (one part's connection dropped and
resumed) until the page says it is ready; launch it as a one-tier stack and read its web page
through the endpoint link; export its disk as a qcow2 from the stack page and download it; capture
the stack from the stack page, launch the captured template from its page and read the new stack's
web page; a member of another project finds none of it. At most two VMs run at once; both stacks
are deleted through their pages, and the fixtures remove the storage pool, the domains and the
worker (see tests/e2e/conftest.py).

An uploaded version names no service port, so a launch from its appliance page publishes none (the
stack page says "No published ports"): the member writes a one-tier template that publishes port
80, as the templates page offers. The web tier alone keeps no records (the db tier does), so its
page is read and nothing is posted to it.

The journey runs at desktop width; the pages it passes through are also checked at phone width
(they fit, and the navigation is reachable), which costs no second pair of VMs.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from catalog.demo_appliances.appliances import DEMO_WEB
from catalog.demo_appliances.build import build_demo_appliances
from provisioning.drivers import open_driver
from provisioning.models import Stack, Status
from provisioning.services import hosts
from tests.browser_pages import (
    assert_fits_the_window,
    assert_navigation_reachable,
    inspect_page,
    new_page,
    sign_in,
    wait_for_open_dialog,
)
from tests.e2e.conftest import BUILD_CACHE, SYSTEM_URI
from tests.polling import wait_for
from transfers.models import Capture, Export, JobStatus, Upload

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("catalog-journey")]

# Small enough that the 16 MB image goes in several parts, so one of them can be dropped.
PART = 4 * 1024**2
BOOT_MS = 300_000
JOB_MS = 180_000


@pytest.fixture
def served_in_parts(settings, monkeypatch):
    """Set before the live server is forked (it keeps the settings it was forked with): uploads in
    small parts, and tasks queued for the worker rather than run where they are queued."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    settings.UPLOAD_CHUNK_BYTES = PART


@pytest.fixture
def web_image(tmp_path) -> Path:
    """The demo web appliance's qcow2, built (or reused from the demo build cache)."""
    out = tmp_path / "demo"
    build_demo_appliances(out_dir=out, base_url="http://127.0.0.1:9", work_dir=BUILD_CACHE, log=lambda _: None)
    image = out / DEMO_WEB.filename
    assert _info(image)["format"] == "qcow2"
    return image


def _info(path: Path) -> dict:
    done = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def _flash(page) -> str:
    return page.locator("main .alert").first.inner_text()


def _phone_fits(phone, url: str) -> None:
    """The same page at phone width: nothing wider than the window, every navigation item reachable."""
    phone.goto(url)
    phone.wait_for_load_state("networkidle")
    assert_fits_the_window(phone)
    assert_navigation_reachable(phone)


def _launch_template(page, *, name: str, project) -> Stack:
    page.get_by_label("Stack name").fill(name)
    page.get_by_label("Project").select_option(label=project.name)
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(r"/stacks/\d+/$"))
    assert name in _flash(page)
    page.locator(f'#stack-status[data-status-text="{name}: Running"]').wait_for(timeout=BOOT_MS)
    return Stack.objects.get(name=name)


def _read_through_endpoint(page, *present: str, what: str) -> str:
    """Open the stack's endpoint link (a new tab) and reload it, as a person would, until the guest's
    page holds every text of ``present``."""
    link = page.locator("#endpoint-1")
    url = link.get_attribute("href")
    assert (url or "").startswith("http://localhost:"), url
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    first = [True]

    def shows() -> str | None:
        try:
            if not first[0]:
                tab.goto(url)
            first[0] = False
            tab.wait_for_load_state()
            text = tab.locator("body").inner_text(timeout=5_000)
        except PlaywrightError:  # nothing answers yet, or the guest's own refresh navigated meanwhile
            return None
        return text if all(p in text for p in present) else None

    try:
        return wait_for(shows, timeout=180, interval=1, what=what)
    finally:
        tab.close()


def _delete_through_page(page, base_url: str, stack: Stack) -> None:
    page.goto(f"{base_url}/stacks/{stack.pk}/")
    page.get_by_role("link", name=re.compile("Delete stack")).click()
    wait_for_open_dialog(page).get_by_role("button", name=f"Delete {stack.name}").click()
    page.locator("#stack-status").get_by_text("Deleted", exact=True).first.wait_for(timeout=JOB_MS)


def test_an_uploaded_image_launched_exported_and_captured_through_the_pages(
    served_in_parts,  # before the server is forked
    web_image,
    chromium,
    live_portal,
    operator,
    member,
    outsider,
    project,
    system_pool,
    worker,
    tmp_path,
):
    pool, pool_path = system_pool
    hosts.host_register(
        user=operator, name="local", uri=SYSTEM_URI, domain_type="qemu", storage_pool=pool, storage_pool_path=pool_path
    )
    size = web_image.stat().st_size
    assert size > 3 * PART
    page = new_page(chromium, "desktop")
    phone = new_page(chromium, "phone")
    sign_in(page, live_portal, member)
    sign_in(phone, live_portal, member)
    stranger = new_page(chromium, "desktop")
    sign_in(stranger, live_portal, outsider)

    # 1. Upload the image from the catalog's upload page; the second part's connection drops once.
    page.goto(f"{live_portal}/catalog/")
    page.get_by_role("link", name="Upload an image").click()
    page.wait_for_url(f"{live_portal}/catalog/upload/")
    _phone_fits(phone, page.url)
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
    page.get_by_label("Project").select_option(label=project.name)
    page.get_by_label("Appliance identifier").fill("my-web")
    page.get_by_label("Version").fill("1.0")
    page.get_by_label("Title").fill("My web server")
    page.get_by_label("Disk image file").set_input_files(str(web_image))
    page.get_by_role("button", name="Upload", exact=True).click()
    outcome = page.locator("#upload-state[data-outcome]")
    outcome.wait_for(timeout=JOB_MS)
    assert outcome.get_attribute("data-outcome") == "ready", outcome.inner_text()
    assert "Ready: my-web 1.0 is in the catalog." in outcome.inner_text()
    assert page.locator("#upload-bar").get_attribute("aria-valuenow") == "100"
    assert patches["dropped"] == 1
    assert patches["seen"] > -(-size // PART)  # every part, and the dropped one again
    page.unroute("**/api/v1/uploads/*/")
    upload = Upload.objects.get()
    assert (upload.status, upload.filename, upload.length) == (Upload.Status.READY, web_image.name, size)

    # Its appliance page: the version is ready, with a Launch button like any other.
    page.get_by_role("link", name="Open my-web").click()
    page.wait_for_url(f"{live_portal}/catalog/appliances/{upload.result.appliance_id}/")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="1.0", exact=True))
    assert "Ready" in row.inner_text()
    assert row.get_by_role("link", name="Launch My web server 1.0").is_visible()
    _phone_fits(phone, page.url)

    # 2. A one-tier stack of it with its web port published: a template of the member's own.
    page.goto(f"{live_portal}/templates/")
    page.get_by_role("link", name="New template").click()
    page.get_by_label("Name", exact=True).fill("my-web-alone")
    page.get_by_label("Project").select_option(label=project.name)
    page.get_by_label("Template (YAML or JSON)").fill(
        "description: My web server on its own\ntiers:\n  - name: web\n    appliance: my-web\n    publish: [80]\n"
    )
    page.get_by_role("button", name="Save").click()
    assert "Template my-web-alone saved." in _flash(page)
    page.get_by_role("link", name="Launch my-web-alone").click()
    mine = _launch_template(page, name="mine", project=project)
    (web,) = mine.instances.all()
    _read_through_endpoint(
        page,
        "demo-web appliance",
        f"Instance {web.name} of stack mine, tier web",
        what="the uploaded appliance's page through the stack's endpoint",
    )

    # 3. Export its disk as a qcow2 from the stack page, and download it from there.
    exports = page.locator("#stack-export")
    exports.get_by_label(f"Format of {web.name}'s disk").select_option("qcow2")
    exports.get_by_role("button", name=f"Export disk of {web.name}").click()
    exports = page.locator("#stack-export")  # replaced by the answer
    assert "it is listed below until it is ready" in exports.get_by_role("status").inner_text()
    download_link = exports.get_by_role("link", name=re.compile(rf"^Download {re.escape(web.name)} "))
    download_link.wait_for(timeout=JOB_MS)
    with page.expect_download() as started:
        download_link.click()
    download = started.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".qcow2"), download.suggested_filename
    exported = tmp_path / download.suggested_filename
    download.save_as(exported)
    info = _info(exported)
    assert info["format"] == "qcow2"
    assert "backing-filename" not in info
    assert "full-backing-filename" not in info
    # The same disk as the one uploaded (the web tier never writes to its disk; the rest is zeros).
    subprocess.run(["qemu-img", "check", "-f", "qcow2", str(exported)], check=True, capture_output=True)
    compared = subprocess.run(
        ["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(web_image), str(exported)],
        capture_output=True,
        text=True,
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr
    (export,) = Export.objects.all()
    assert (export.status, export.size_bytes) == (JobStatus.READY, exported.stat().st_size)
    page.locator('#stack-status[data-status-text="mine: Running"]').wait_for()

    # 4. Capture the stack from its page, then launch the captured template from the template's page.
    capture = page.locator("#stack-capture")
    capture.get_by_label("Appliance prefix").fill("homemade")
    capture.get_by_label("Version").fill("2.0")
    capture.get_by_role("button", name="Capture mine").click()
    capture = page.locator("#stack-capture")
    assert "Capturing mine as version 2.0" in capture.get_by_role("status").first.inner_text()
    template_link = capture.get_by_role("link", name="mine-2-0")
    try:
        template_link.wait_for(timeout=JOB_MS)
    except PlaywrightError:
        made = Capture.objects.get()
        pytest.fail(f"no template link: the capture is {made.status}: {made.error or capture.inner_text()}")
    page.locator('#stack-status[data-status-text="mine: Running"]').wait_for()
    inspect_page(page, "catalog-journey-stack", "desktop")
    _phone_fits(phone, page.url)
    inspect_page(phone, "catalog-journey-stack", "phone")
    template_link.click()
    page.wait_for_url(re.compile(r"/templates/\d+/$"))
    _phone_fits(phone, page.url)
    # Another project's member finds none of it: not the stack's panels, not the captured template.
    for address in (f"/stacks/{mine.pk}/exports/", f"/stacks/{mine.pk}/capture/", page.url.removeprefix(live_portal)):
        assert stranger.goto(f"{live_portal}{address}").status == 404, address
    copy = _launch_template(page, name="copy", project=project)
    (copied_web,) = copy.instances.all()
    assert copied_web.appliance_version.appliance.identifier == "homemade-web"
    assert copied_web.appliance_version.version == "2.0"
    _read_through_endpoint(
        page,
        "demo-web appliance",
        f"Instance {copied_web.name} of stack copy, tier web",
        what="the captured appliance's page through the new stack's endpoint",
    )

    # Both stacks deleted through their pages; no domain of theirs is left.
    for stack in (copy, mine):
        _delete_through_page(page, live_portal, stack)
        assert Stack.objects.get(pk=stack.pk).status == Status.DELETED
    with open_driver(SYSTEM_URI) as driver:
        left = {d.name for d in driver.list_domains()}
    assert {web.domain_name, copied_web.domain_name} & left == set()
    assert page.script_errors == []
    assert phone.script_errors == []

"""The one launch dialog in a real browser, at phone and desktop widths: from the dashboard (with its
appliance picker), from the catalog and on a template's page. It starts on a project with room, says
when a project is over its quota or no host has room (and Launch is then off), refuses a bad name
before anything is sent, keeps a refused launch's problem in the dialog, and no page's scripts or
name patterns leave an error in the console."""

from __future__ import annotations

import re

import pytest

from portal.models import Role
from provisioning.models import Host, Stack
from provisioning.services import templates
from provisioning.services.launch import stack_launch
from tests.browser_pages import inspect_page, new_page, sign_in, wait_for_open_dialog
from tests.factories import MembershipFactory, ProjectFactory
from tests.transfers.upload_helpers import use_private_folders

pytestmark = [pytest.mark.xdist_group("browser-launch")]


@pytest.fixture
def furnished(settings, tmp_path, transactional_db, member, project, operator, test_host, ready_version):
    """The member is in "aaa-full" (first by name, no room for a stack) and in "alpha" (room)."""
    use_private_folders(settings, tmp_path)
    full = ProjectFactory(name="aaa-full", max_stacks=0)
    MembershipFactory(project=full, user=member, role=Role.MEMBER)
    source = f"tiers: [{{name: web, appliance: {ready_version.appliance.identifier}, count: 2}}]"
    templates.template_create(user=operator, project=None, name="web-pair", source=source)
    return full


def console_errors(page) -> list[str]:
    """Errors the page writes to the console from now on (an invalid ``pattern`` is one of them)."""
    found: list[str] = []
    page.on("console", lambda message: message.type == "error" and found.append(message.text))
    return found


def check_every_pattern(page) -> None:
    """Make the browser compile each input's pattern, as typing into it would."""
    page.evaluate("() => document.querySelectorAll('input[pattern]').forEach((input) => input.checkValidity())")


def no_console_errors(found: list[str], url: str) -> None:
    # A live page without Redis may say its socket could not connect: that is not this page's markup.
    mine = [text for text in found if "WebSocket" not in text]
    assert mine == [], f"{url}: console errors {mine}"


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_launching_from_the_dashboard_catalog_and_a_template(
    chromium, live_portal, furnished, member, project, ready_version, width
):
    page = new_page(chromium, width)
    found = console_errors(page)
    sign_in(page, live_portal, member)

    # The dashboard's main button opens the dialog with the appliance picker: one entry per appliance.
    page.get_by_role("link", name="Launch a stack").click()
    dialog = wait_for_open_dialog(page)
    picker = dialog.get_by_label("Appliance")
    picker.wait_for()
    options = picker.locator("option").all_inner_texts()
    assert "---------" not in options
    assert options[0] == "Choose an appliance"
    assert sum(text.startswith("Demo web ") for text in options) == 1
    assert dialog.get_by_role("button", name="Launch").is_disabled()
    picker.select_option(str(ready_version.pk))
    verdict = dialog.locator("[data-launch-verdict]")
    verdict.filter(has_text="Within the quota of alpha.").wait_for()
    # Not the first project by name, which is full: the one with room.
    assert dialog.get_by_label("Project").locator("option:checked").inner_text() == "alpha"
    assert "A host has room for 1 vCPU" in verdict.inner_text()
    assert dialog.get_by_label("Stack name").input_value().startswith(ready_version.appliance.identifier)
    inspect_page(page, "launch-dialog-dashboard", width)

    # Over quota: said, and Launch is off; switching project back turns it on again.
    dialog.get_by_label("Project").select_option(label="aaa-full")
    verdict.filter(has_text="Over the quota of aaa-full: 0 of 0 stacks in use").wait_for()
    launch = dialog.get_by_role("button", name="Launch")
    assert launch.is_disabled()
    assert dialog.locator("#launch-why").inner_text() == "Launch is off: choose a project with room."
    inspect_page(page, "launch-dialog-over-quota", width)
    dialog.get_by_label("Project").select_option(label="alpha")
    verdict.filter(has_text="Within the quota of alpha.").wait_for()
    assert launch.is_enabled()

    # A bad name is refused by the browser, next to the field, and nothing is sent.
    posts: list[str] = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    dialog.get_by_label("Stack name").fill("Bad Name")
    launch.click()
    error = dialog.locator("#id_name_error")
    assert error.inner_text().startswith("Name must be 1-40 lowercase letters")
    assert dialog.get_by_label("Stack name").get_attribute("aria-invalid") == "true"
    assert posts == []

    # A name the project already uses is the server's refusal: it comes back into the dialog.
    stack_launch(user=member, project=project, name="taken", appliance_version=ready_version, lease_seconds=3600)
    dialog.get_by_label("Stack name").fill("taken")
    launch.click()
    dialog.locator("#id_name_error").filter(has_text="already has a stack called").wait_for()
    assert page.url == f"{live_portal}/"
    assert len(posts) == 1

    dialog.get_by_label("Stack name").fill("from-dashboard")
    dialog.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(rf"{live_portal}/stacks/\d+/"))
    assert Stack.objects.filter(name="from-dashboard", project=project).exists()
    no_console_errors(found, "dashboard")

    # The catalog: its button opens the same dialog with the version and a suggested name.
    page.goto(f"{live_portal}/catalog/")
    check_every_pattern(page)
    page.get_by_role("link", name=re.compile(r"^Launch Demo web")).first.click()
    dialog = wait_for_open_dialog(page)
    name = dialog.get_by_label("Stack name")
    name.wait_for()
    assert name.input_value().startswith(ready_version.appliance.identifier)
    check_every_pattern(page)
    # No host has room (the only one drains): said before Launch is pressed, and Launch is off.
    Host.objects.update(draining=True)
    dialog.get_by_label("Lease").select_option(label="1 hour")
    verdict = dialog.locator("[data-launch-verdict]")
    verdict.filter(has_text="Every enabled and healthy host is draining").wait_for()
    assert dialog.get_by_role("button", name="Launch").is_disabled()
    assert dialog.locator("#launch-why").inner_text() == "Launch is off: no host can take it now."
    inspect_page(page, "launch-dialog-no-room", width)
    no_console_errors(found, "catalog")
    Host.objects.update(draining=False)

    # A template's page: the same form, its projects only those it may go to, and the preview.
    page.goto(f"{live_portal}/templates/")
    page.get_by_role("link", name="Launch web-pair").click()
    page.get_by_role("heading", name="Launch web-pair").wait_for()
    check_every_pattern(page)
    assert page.get_by_label("Project").locator("option:checked").inner_text() == "alpha"
    page.locator("[data-launch-verdict]").filter(has_text="Within the quota of alpha.").wait_for()
    assert "What this launch takes: 2 vCPU and 256 MiB of memory" in page.locator(".launch-preview").inner_text()
    inspect_page(page, "template-launch", width)
    page.get_by_label("Project").select_option(label="aaa-full")
    page.locator("[data-launch-verdict]").filter(has_text="Over the quota of aaa-full").wait_for()
    assert page.get_by_role("button", name="Launch").is_disabled()
    no_console_errors(found, "template")

    # Without the dialog's script the same form is a page of its own, with the picker and the preview.
    page.goto(f"{live_portal}/stacks/launch/")
    assert "---------" not in page.get_by_label("Appliance").locator("option").all_inner_texts()
    inspect_page(page, "launch-page", width)
    no_console_errors(found, "launch page")

    page.goto(f"{live_portal}/catalog/upload/")
    check_every_pattern(page)
    for field in page.locator("input[pattern]").all():
        field.fill("x")
    no_console_errors(found, "upload")

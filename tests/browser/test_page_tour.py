"""Every main page at phone and desktop widths, as a member and as an operator.

Data is made in this process first (a stack built on libvirt's test driver, a shipped template, a
feed that failed); then a real Chromium visits each page of a live daphne and checks it fits the
window, keeps the navigation reachable, has no serious accessibility violation, and runs no
script that fails. The screenshots land in $PORTAL_SCREENSHOT_DIR (docs/screenshots/ for the README).
"""

from __future__ import annotations

import re

import pytest

from catalog.models import Feed
from portal.models import Project, Role
from provisioning.models import StackTemplate
from provisioning.services import templates
from provisioning.services.launch import stack_launch
from tests.browser_pages import assert_navigation_reachable, inspect_page, new_page, sign_in, wait_for_open_dialog
from tests.factories import FeedFactory, MembershipFactory

pytestmark = [pytest.mark.xdist_group("browser-tour")]


@pytest.fixture
def furnished(transactional_db, member, project, operator, test_host, ready_version):
    """A running stack, the shipped templates, a failed feed and a second member: pages with content."""
    stack = stack_launch(user=member, project=project, name="shop", appliance_version=ready_version, lease_seconds=3600)
    templates.install_shipped_templates(user=operator)
    FeedFactory(
        project=project,
        url="https://feeds.example.org/broken.xml",
        last_status=Feed.ImportStatus.ERROR,
        last_error="https://feeds.example.org/broken.xml: HTTP 404 Not Found",
    )
    MembershipFactory(project=project, role=Role.VIEWER, user__username="victor")
    return stack


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_every_main_page_fits_and_passes_accessibility_checks(
    chromium, live_portal, furnished, member, operator, width
):
    stack = furnished
    anonymous = new_page(chromium, width)
    anonymous.goto(f"{live_portal}/login/")
    inspect_page(anonymous, "sign-in", width)

    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    inspect_page(page, "dashboard", width)
    assert_navigation_reachable(page)

    appliance = stack.instances.get().appliance_version.appliance
    template = StackTemplate.objects.get(name="classic-three-tier")
    pages = {
        "catalog": "/catalog/",
        "appliance": f"/catalog/appliances/{appliance.pk}/",
        "stacks": "/stacks/",
        "stack": f"/stacks/{stack.pk}/",
        "templates": "/templates/",
        "members": f"/projects/{stack.project_id}/members/",
        "tokens": "/account/tokens/",
        "template-launch": f"/templates/{template.pk}/",
    }
    for name, path in pages.items():
        page.goto(f"{live_portal}{path}")
        inspect_page(page, name, width)

    # The launch dialog tells what a launch would take from the quota before anything is sent:
    # the project has room for one vCPU and its running stack holds it.
    Project.objects.filter(pk=stack.project_id).update(max_vcpus=1)
    page.goto(f"{live_portal}/catalog/")
    page.get_by_role("link", name=re.compile(r"^Launch ")).first.click()
    dialog = wait_for_open_dialog(page)
    assert dialog.get_by_label("Stack name").input_value().startswith(appliance.identifier)
    verdict = dialog.locator("[data-launch-verdict]").inner_text()
    assert verdict.startswith("Over the quota of alpha: 1 of 1 vCPUs in use, this launch needs 1 more."), verdict
    assert dialog.get_by_role("button", name="Launch").is_disabled()
    inspect_page(page, "launch-dialog", width)
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")

    page.goto(f"{live_portal}/no/such/page/")
    inspect_page(page, "not-found", width)
    assert page.get_by_role("link", name="Dashboard").count() >= 1

    # Swagger UI is drf-spectacular's sidecar, not our markup: it must fit, its accessibility is theirs.
    page.goto(f"{live_portal}/api/v1/docs/")
    page.locator(".swagger-ui").wait_for()
    inspect_page(page, "api-docs", width, accessibility=False)

    admin = new_page(chromium, width)
    sign_in(admin, live_portal, operator)
    inspect_page(admin, "dashboard-operator", width)
    admin.goto(f"{live_portal}/hosts/")
    inspect_page(admin, "hosts", width)

"""Form errors in a real browser: where the eye is after a refused submit, and the template editor's check.

A form that comes back refused opens with a summary of its errors, and the focus is moved there, so on
a phone the reader sees what to correct instead of the top of a long page. The template editor opens
with its starter, checks the document as the person types without taking the caret away, and a
refused save lists every problem.
"""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.models import Role
from tests.browser_pages import inspect_page, new_page, sign_in
from tests.factories import ApplianceVersionFactory, FeedFactory, MembershipFactory

pytestmark = [pytest.mark.xdist_group("browser-form-errors")]

_SUMMARY_IN_VIEW_AND_FOCUSED = """() => {
  const summary = document.querySelector("[data-error-summary]");
  if (!summary) return {found: false};
  const box = summary.getBoundingClientRect();
  return {
    found: true,
    focused: document.activeElement === summary,
    top: Math.round(box.top),
    bottom: Math.round(box.bottom),
    window: window.innerHeight,
    scrolled: Math.round(window.scrollY),
  };
}"""


def _assert_summary_where_the_eye_is(page) -> dict:
    # Bootstrap scrolls smoothly: the focus starts the scroll, which then takes a moment.
    with contextlib.suppress(PlaywrightTimeout):  # the assertions below say what was seen
        page.wait_for_function(
            "() => { const s = document.querySelector('[data-error-summary]');"
            " if (!s) return false; const top = s.getBoundingClientRect().top;"
            " return top >= 0 && top < window.innerHeight; }",
            timeout=5000,
        )
    seen = page.evaluate(_SUMMARY_IN_VIEW_AND_FOCUSED)
    assert seen["found"], "no error summary"
    assert seen["focused"], f"the error summary does not have the focus: {seen}"
    assert 0 <= seen["top"] < seen["window"], f"the error summary is out of view: {seen}"
    return seen


@pytest.fixture
def demo_appliances(transactional_db):
    feed = FeedFactory(project=None)
    for identifier in ("demo-db", "demo-app", "demo-web"):
        ApplianceVersionFactory(appliance__feed=feed, appliance__identifier=identifier)


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_a_refused_member_form_far_down_the_page_shows_its_summary_in_view(
    chromium, live_portal, owner, project, width
):
    for number in range(30):  # a long member list puts the form far below the top on a phone
        MembershipFactory(project=project, role=Role.VIEWER, user__username=f"person-{number:02}")
    page = new_page(chromium, width)
    sign_in(page, live_portal, owner)
    page.goto(f"{live_portal}/projects/{project.pk}/members/")
    page.get_by_label("User name").fill("nosuchuser")
    page.get_by_role("button", name="Add member").click()
    page.wait_for_load_state("load")
    seen = _assert_summary_where_the_eye_is(page)
    if width == "phone":
        assert seen["scrolled"] > 1000, f"the form was expected far down the phone's page: {seen}"
    summary = page.locator("[data-error-summary]")
    assert "There is no user called nosuchuser who can sign in" in summary.inner_text()
    summary.get_by_role("link", name="User name").click()
    assert page.evaluate("() => document.activeElement.id") == "id_username"
    inspect_page(page, "members-refused", width)


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_template_editor_starts_from_the_starter_checks_live_and_lists_every_problem(
    chromium, live_portal, member, project, demo_appliances, width
):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/templates/")
    page.get_by_role("link", name="Start from the three-tier example").click()
    editor = page.get_by_label("Template (YAML or JSON)")
    assert "# A stack of three tiers" in editor.input_value()
    inspect_page(page, "template-new", width)

    page.get_by_role("button", name="Check").click()
    panel = page.locator("#template-check")
    panel.get_by_text("No problems found in the template: 3 tiers (db, app, web)").wait_for()

    # Typing a mistake: the check runs after a pause, lists it with its line, and leaves the caret alone.
    starter = editor.input_value()
    editor.fill(starter.replace("count: 1 ", "count: 99 ").replace("appliance: demo-app", "appliance: demo-ap"))
    editor.press("End")
    panel.get_by_text("2 problems to fix").wait_for()
    assert "(did you mean demo-app?)" in panel.inner_text()
    assert "tiers[2].count: a whole number from 1 to 10" in panel.inner_text()
    assert page.evaluate("() => document.activeElement.id") == "id_source"

    page.get_by_label("Name", exact=True).fill("Not A Name")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state("load")
    _assert_summary_where_the_eye_is(page)
    source_errors = page.locator("#id_source_error").inner_text()
    assert "tiers[1].appliance: there is no appliance demo-ap" in source_errors
    assert "tiers[2].count" in source_errors
    assert page.locator("#id_name_error").is_visible()
    inspect_page(page, "template-refused", width)

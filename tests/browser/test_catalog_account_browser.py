"""The catalog and the account page in a real browser, at phone and desktop widths.

On a phone the catalog is a short page of entries (copies grouped), an appliance's Launch is in view
without scrolling, a failed image says why instead of offering Launch, a refused feed URL is shown
next to its field where the page opens, and the account page changes a password in place.
"""

from __future__ import annotations

import pytest

from catalog.models import ImageDelivery, image_source_key
from tests.browser_pages import inspect_page, new_page, sign_in
from tests.factories import ApplianceVersionFactory, FeedFactory

pytestmark = [pytest.mark.xdist_group("browser-catalog-account")]

# Bootstrap scrolls smoothly to a page's fragment: an error is in view once the scrolling ends.
IN_VIEW = """selector => {
  const box = document.querySelector(selector).getBoundingClientRect();
  return box.top >= 0 && box.bottom <= window.innerHeight;
}"""

# A phone's page of entries: well under the 9,800 px one long list took.
PHONE_CATALOG_MAX_PX = 5500


@pytest.fixture
def shelves(transactional_db, project):
    shared = FeedFactory(project=None, title="Shared mirror")
    own = FeedFactory(project=project, title="Our mirror")
    versions = []
    for number in range(20):
        for feed in (shared, own):
            versions.append(
                ApplianceVersionFactory(
                    appliance__feed=feed,
                    appliance__identifier=f"app-{number:02}",
                    appliance__title=f"Appliance {number:02}",
                    appliance__description="A small appliance that serves one web page, for trying the portal. " * 2,
                )
            )
    broken = versions[0]  # Appliance 00 of the shared mirror
    ImageDelivery.objects.create(
        version=broken,
        source=image_source_key(broken.image_url),
        status=ImageDelivery.Status.ERROR,
        error="image for Appliance 00 1.0.0: sha256 mismatch: the feed promised aaaa, the download is bbbb",
    )
    return versions


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_catalog_is_a_short_page_of_grouped_entries(chromium, live_portal, member, shelves, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/catalog/")
    inspect_page(page, "catalog", width)
    assert page.locator("article.card").count() == 12
    assert page.get_by_text("offered by 2 feeds").count() == 12
    if width == "phone":
        height = page.evaluate("() => document.documentElement.scrollHeight")
        assert height < PHONE_CATALOG_MAX_PX, f"the catalog is {height} px tall on a phone"


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_an_appliances_launch_is_in_view_and_a_failed_copy_says_why(chromium, live_portal, member, shelves, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    fine = shelves[3]  # Appliance 01 of the project's mirror
    page.goto(f"{live_portal}/catalog/appliances/{fine.appliance_id}/")
    inspect_page(page, "appliance-detail", width)
    launch = page.locator(f'a[data-version="{fine.pk}"]').first
    assert launch.is_visible()
    box = launch.bounding_box()
    window = page.viewport_size
    assert box["y"] + box["height"] <= window["height"], f"Launch is below the fold at {box}"
    assert box["x"] + box["width"] <= window["width"]

    broken = shelves[0]
    page.goto(f"{live_portal}/catalog/appliances/{broken.appliance_id}/")
    inspect_page(page, "appliance-detail-failed", width)
    assert page.locator(f'a[data-version="{broken.pk}"]').count() == 0
    assert page.get_by_text("The image failed its checksum").first.is_visible()
    assert page.get_by_role("button", name="Retry the download").first.is_visible()


def test_a_refused_feed_url_is_shown_next_to_the_field_on_a_phone(chromium, live_portal, member, shelves, project):
    page = new_page(chromium, "phone")
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/catalog/")
    page.get_by_role("link", name="Subscribe to a feed").click()
    page.get_by_label("Feed URL").fill("ftp://feeds.example.org/feed.xml")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#id_url_error").is_visible()
    page.wait_for_function(IN_VIEW, arg="#id_url_error", timeout=5000)
    inspect_page(page, "catalog-subscribe-error", "phone")


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_account_page_changes_a_password_in_place(chromium, live_portal, member, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/account/")
    inspect_page(page, "account", width)
    page.locator("#id_password-old_password").fill("not-it")
    page.locator("#id_password-new_password1").fill("correct-horse-battery-staple")
    page.locator("#id_password-new_password2").fill("correct-horse-battery-staple")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_load_state("networkidle")
    error = page.locator("#id_password-old_password_error")
    assert "That is not your current password." in error.inner_text()
    page.wait_for_function(IN_VIEW, arg="#id_password-old_password_error", timeout=5000)
    inspect_page(page, "account-error", width)
    page.locator("#id_password-old_password").fill("pw")
    page.locator("#id_password-new_password1").fill("correct-horse-battery-staple")
    page.locator("#id_password-new_password2").fill("correct-horse-battery-staple")
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Your password is changed").wait_for()
    assert "/account/" in page.url
    page.wait_for_function(IN_VIEW, arg=".alert-success", timeout=5000)

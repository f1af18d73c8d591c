"""The Hosts page and the API docs in a real browser, at phone and desktop widths.

A host's URI stays readable on a phone (it breaks at its punctuation, not after every character),
draining from the page asks first and answers in the host's row, and the docs page keeps the
portal's navigation.
"""

from __future__ import annotations

import pytest

from provisioning.models import Host
from tests.browser_pages import assert_navigation_reachable, inspect_page, new_page, sign_in
from tests.factories import HostFactory

pytestmark = [pytest.mark.xdist_group("browser-hosts")]

LONG_URI = "qemu+ssh://portal-operator@hypervisor-rack-04.example.org/system?keyfile=/etc/portal/ssh/id_ed25519"


@pytest.fixture
def hosts(transactional_db):
    return [
        HostFactory(name="hv-rack-04", uri=LONG_URI, cpus=2, cpu_overcommit=4, pool_capacity_bytes=100 * 1024**3),
        HostFactory(name="hv-drained", uri="test:///browser-drained", draining=True),
    ]


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_hosts_page_fits_and_a_uri_reads_as_lines_not_letters(chromium, live_portal, operator, hosts, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, operator)
    page.goto(f"{live_portal}/hosts/")
    inspect_page(page, "hosts-actions", width)
    assert_navigation_reachable(page)

    uri = page.locator(f"#host-{hosts[0].pk} .host-uri")
    box = uri.bounding_box()
    line_height = uri.evaluate("element => parseFloat(getComputedStyle(element).lineHeight)")
    # About 100 characters: at most a handful of lines, however narrow the window.
    assert box["height"] <= 5 * line_height, f"the URI takes {box['height'] / line_height:.0f} lines"
    assert box["width"] >= 0.6 * page.viewport_size["width"] or width == "desktop"

    row = page.locator(f"#host-{hosts[0].pk}")
    assert "2 CPUs \u00d7 4 overcommit = 8 vCPUs to place" in row.inner_text()
    drained = page.locator(f"#host-{hosts[1].pk}")
    assert "Takes no new stacks" in drained.inner_text()


def test_drain_asks_first_and_answers_in_the_row(chromium, live_portal, operator, hosts):
    page = new_page(chromium, "phone")
    sign_in(page, live_portal, operator)
    page.goto(f"{live_portal}/hosts/")
    host = hosts[0]
    row = page.locator(f"#host-{host.pk}")

    questions: list[str] = []

    def refuse(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", refuse)
    row.get_by_role("button", name=f"Drain {host.name}").click()
    page.wait_for_timeout(300)
    assert questions
    assert questions[0].startswith(f"Drain {host.name}?")
    host.refresh_from_db()
    assert not host.draining

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Drain {host.name}").click()
    page.locator(f"#host-{host.pk}").get_by_role("status").wait_for()
    assert f"{host.name} is draining" in page.locator(f"#host-{host.pk}").inner_text()
    assert Host.objects.get(pk=host.pk).draining
    assert page.url.endswith("/hosts/")  # answered in place, no page load
    page.locator(f"#host-{host.pk}").get_by_role("button", name=f"Undrain {host.name}").click()
    page.locator(f"#host-{host.pk}").get_by_text(f"{host.name} takes new stacks again.").wait_for()
    assert not Host.objects.get(pk=host.pk).draining
    assert page.script_errors == []


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_api_docs_page_keeps_the_navigation(chromium, live_portal, member, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/api/v1/docs/")
    page.locator(".swagger-ui .opblock").first.wait_for()
    inspect_page(page, "api-docs", width)
    assert_navigation_reachable(page)
    assert page.get_by_role("heading", name="Authentication").is_visible()

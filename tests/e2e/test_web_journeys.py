"""A member's main journey on real VMs, in Chromium at phone and desktop widths.

First sign-in, subscribe the demo feed, launch the classic three-tier stack from its template,
watch it come up, open a console, extend the lease, delete the stack; then a launch over the
project's quota, which must say why it was refused. The worker is a real django-q2 cluster and
the VMs run under qemu:///system; everything is removed afterwards (see tests/e2e/conftest.py).
"""

from __future__ import annotations

import re

import pytest

from portal.models import Project
from provisioning.drivers import open_driver
from provisioning.models import Stack, Status
from provisioning.services import hosts, templates
from tests.browser_pages import (
    assert_fits_the_window,
    assert_navigation_reachable,
    inspect_page,
    new_page,
    sign_in,
    toggle_menu,
    wait_for_console,
)
from tests.e2e.conftest import SYSTEM_URI
from tests.polling import page_text, wait_for

pytestmark = [pytest.mark.e2e]


def _go(page, name: str) -> None:
    """Follow a main navigation link as a person would: through the menu button on a phone."""
    toggle_menu(page)
    page.locator("#main-nav").get_by_role("link", name=name, exact=True).click()
    page.wait_for_load_state()
    assert_fits_the_window(page)


def _flash(page) -> str:
    return page.locator("main .alert").first.inner_text()


def _reload_until(page, predicate, *, timeout: float, what: str):
    def check():
        page.reload()
        return predicate()

    return wait_for(check, timeout=timeout, interval=2, what=what)


@pytest.fixture
def tasks_for_the_worker(monkeypatch):
    """Tasks are queued for the worker, also by the server forked after this (not run where they are queued)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)


@pytest.mark.parametrize(
    "width",
    [
        pytest.param("phone", marks=pytest.mark.xdist_group("journey-phone")),
        pytest.param("desktop", marks=pytest.mark.xdist_group("journey-desktop")),
    ],
)
def test_first_sign_in_to_a_deleted_three_tier_stack(
    tasks_for_the_worker,  # before the server is forked
    chromium,
    live_portal,
    operator,
    member,
    project,
    demo_feed,
    system_pool,
    worker,
    width,
):
    pool, pool_path = system_pool
    hosts.host_register(
        user=operator, name="local", uri=SYSTEM_URI, domain_type="qemu", storage_pool=pool, storage_pool_path=pool_path
    )
    templates.install_shipped_templates(user=operator)
    page = new_page(chromium, width)

    # First sign-in: an empty dashboard that says where to start.
    sign_in(page, live_portal, member)
    assert_navigation_reachable(page)
    assert_fits_the_window(page)

    # Subscribe the demo feed; the worker imports it while the page is reloaded.
    _go(page, "Catalog")
    subscribe = page.locator("form", has=page.get_by_role("button", name="Subscribe"))
    subscribe.get_by_label("Feed URL").fill(demo_feed)
    subscribe.get_by_label("Project").select_option(label=project.name)
    subscribe.get_by_role("button", name="Subscribe").click()
    assert "Subscribed to" in _flash(page)
    _reload_until(
        page,
        lambda: page.get_by_role("heading", name=re.compile("demo-web|Demo web", re.I)).count(),
        timeout=120,
        what="the demo feed's appliances in the catalog",
    )
    assert_fits_the_window(page)

    # Launch the classic three-tier stack from its template.
    _go(page, "Templates")
    page.get_by_role("link", name=re.compile("classic-three-tier")).first.click()
    page.get_by_label("Stack name").fill("shop")
    page.get_by_label("Project").select_option(label=project.name)
    page.get_by_role("button", name="Launch").click()
    # The launch is sent from the page's script, which then goes to the new stack's page.
    page.wait_for_url(re.compile(r"/stacks/\d+/$"))
    stack = Stack.objects.get(name="shop")
    assert "shop" in _flash(page)

    # Watch it come up: the status part re-reads itself (pushed or polled), no reload needed.
    # The stack's own status, not the first tier's badge that says Running.
    page.locator('#stack-status[data-status-text="shop: Running"]').wait_for(timeout=300_000)
    inspect_page(page, "journey-stack-running", width)
    web = stack.instances.get(role="web")
    url = web.published_ports.get().url
    chain = wait_for(
        lambda: (text := page_text(url)) and "order 1001" in text and text,
        timeout=180,
        interval=1,
        what="the web tier's page showing the whole chain",
    )
    assert "3 teapots, paid" in chain

    # Open the web tier's screen and see the console connect.
    page.locator(f"#screen-{web.pk}").click()
    wait_for_console(page, live_portal, web, timeout_ms=45_000)
    inspect_page(page, "journey-console", width)
    page.goto(f"{live_portal}/stacks/{stack.pk}/")  # not back: the browser may show its cached copy

    # Extend the lease (as far as one extension reaches from now): it only ever grows.
    before = Stack.objects.get(pk=stack.pk).expires_at
    page.get_by_role("button", name="Extend lease").click()
    page.locator("#lease-notes").get_by_text("Lease extended").wait_for(timeout=20_000)
    assert Stack.objects.get(pk=stack.pk).expires_at > before

    # Delete it, after saying yes in the dialog; the page ends in the deleted state.
    page.get_by_role("link", name=re.compile("Delete stack")).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete shop").click()
    page.locator("#stack-status").get_by_text("Deleted", exact=True).first.wait_for(timeout=120_000)
    assert Stack.objects.get(pk=stack.pk).status == Status.DELETED
    with open_driver(SYSTEM_URI) as driver:
        running = {d.name for d in driver.list_domains()}
    domains = set(stack.instances.values_list("domain_name", flat=True))
    assert len(domains) == 3
    assert domains & running == set()

    # Over the quota: the page says why before anything is sent, and Launch is off.
    Project.objects.filter(pk=project.pk).update(max_instances=2)
    _go(page, "Templates")
    page.get_by_role("link", name=re.compile("classic-three-tier")).first.click()
    page.get_by_label("Stack name").fill("shop-two")
    page.get_by_label("Project").select_option(label=project.name)
    verdict = page.get_by_text(re.compile("^Over the quota of"))
    verdict.wait_for()
    assert "instances" in verdict.inner_text(), verdict.inner_text()
    assert page.get_by_role("button", name="Launch").is_disabled()
    assert not Stack.objects.filter(name="shop-two").exists()
    assert_fits_the_window(page)

"""Pages in a real browser: Debian's Chromium driven by Playwright, the portal served by daphne.

The server is ``tests.live_server``'s; it and the browser are stopped by the fixtures that
started them. Every page a test visits can be checked the same way at phone and desktop widths
(``inspect_page``): nothing wider than the window, no serious accessibility violation (axe-core
from npm), and a screenshot (for the README when
``PORTAL_SCREENSHOT_DIR`` names ``docs/screenshots``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.live_server import server_threads

CHROMIUM = shutil.which("chromium")
AXE_SCRIPT = Path(django_settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
# The README's screenshots are refreshed on request (PORTAL_SCREENSHOT_DIR=docs/screenshots); an
# ordinary run writes them to a scratch folder and leaves the checkout as it was.
SCREENSHOTS = Path(os.environ.get("PORTAL_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "portal-screenshots")
WIDTHS = {"phone": (390, 844), "desktop": (1366, 900)}
PASSWORD = "pw"  # what tests.factories.UserFactory gives everyone


@pytest.fixture
def chromium(live_portal, monkeypatch):
    """A headless Chromium (Debian's, never a downloaded one), for pages of ``live_portal``.

    Asking for the server makes the browser (and the database connections opened inside
    Playwright's loop) go first at teardown: the server's teardown waits for the database to be idle.
    """
    assert CHROMIUM is not None, "Debian's chromium is missing: ./scripts/test.sh installs it"
    from playwright import sync_api

    # Playwright's sync API runs an event loop in this thread; the ORM calls in tests are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
            # Inside Playwright's event loop Django's connections are per context, not per thread:
            # one opened there would outlive the test and keep the test database from being dropped.
            connections.close_all()


def new_page(browser, width_name: str):
    width, height = WIDTHS[width_name]
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.script_errors = errors
    # What the browser saw go wrong besides, for a test's failure message (``browser_log``).
    log: list[str] = []
    page.on("console", lambda message: message.type in ("error", "warning") and log.append(message.text))
    page.on("requestfailed", lambda request: log.append(f"failed: {request.url} {request.failure}"))
    page.on("websocket", lambda socket: _watch_socket(socket, log))
    page.browser_log = log
    return page


def _watch_socket(socket, log: list[str]) -> None:
    log.append(f"websocket opened: {socket.url.split('?')[0]}")
    socket.on("close", lambda _socket: log.append(f"websocket closed: {socket.url.split('?')[0]}"))


def sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("User name").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


_OVERFLOW = """() => {
  const limit = document.documentElement.clientWidth;
  const wide = [];
  for (const element of document.body.querySelectorAll("*")) {
    const box = element.getBoundingClientRect();
    if (box.width && box.right > limit + 1 && getComputedStyle(element).position !== "fixed") {
      // Inside a scrolling container (a wide table in .table-responsive) is fine: the page is not wider.
      let scroller = element.parentElement, clipped = false;
      while (scroller && scroller !== document.body) {
        const overflow = getComputedStyle(scroller).overflowX;
        if (overflow === "auto" || overflow === "scroll" || overflow === "hidden") { clipped = true; break; }
        scroller = scroller.parentElement;
      }
      if (!clipped) wide.push(`${element.tagName.toLowerCase()}.${element.className} right=${Math.round(box.right)}`);
    }
  }
  const page = document.documentElement.scrollWidth;
  if (page > limit && !wide.length) {
    // Something clipped by a scroller still widens the page (an absolutely positioned child): name it.
    for (const element of document.body.querySelectorAll("*")) {
      const box = element.getBoundingClientRect();
      if (box.right > limit + 1) {
        wide.push(`${element.tagName.toLowerCase()}.${element.className} right=${Math.round(box.right)}`);
      }
    }
  }
  return {page, window: limit, wide: wide.slice(0, 5)};
}"""


def assert_fits_the_window(page) -> None:
    found = page.evaluate(_OVERFLOW)
    assert found["page"] <= found["window"], f"{page.url}: page is wider than the window: {found}"
    assert found["wide"] == [], f"{page.url}: elements past the window's edge: {found}"


def toggle_menu(page) -> bool:
    """Open or close the phone menu and wait for its animation to end; False where there is no menu button.

    Bootstrap ignores a click on the button while the menu is still sliding.
    """
    toggler = page.locator(".navbar-toggler")
    if not toggler.is_visible():
        return False
    toggler.click()
    page.wait_for_function("() => !document.querySelector('#main-nav.collapsing')")
    return True


def wait_for_open_dialog(page):
    """The open Bootstrap dialog, once its fade-in has ended (checks made mid-fade see faded colours)."""
    page.wait_for_function(
        "() => { const open = document.querySelector('.modal.show');"
        " return open && getComputedStyle(open).opacity === '1'"
        " && getComputedStyle(open.querySelector('.modal-dialog')).transform === 'none'; }"
    )
    return page.get_by_role("dialog")


def assert_navigation_reachable(page) -> None:
    """Every link of the main navigation can be seen (after opening the menu on a phone)."""
    opened = toggle_menu(page)
    links = page.locator("#main-nav .nav-link")
    assert links.count() >= 4
    window = page.viewport_size
    for index in range(links.count()):
        link = links.nth(index)
        assert link.is_visible(), f"navigation item {link.inner_text()!r} is hidden"
        box = link.bounding_box()
        assert box["x"] >= 0, f"{link.inner_text()!r} is off-screen"
        assert box["x"] + box["width"] <= window["width"], f"{link.inner_text()!r} is off-screen"
    if opened:
        toggle_menu(page)


def serious_accessibility_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": item["id"], "impact": item["impact"], "nodes": [node["target"] for node in item["nodes"][:3]]}
        for item in result["violations"]
        if item["impact"] in ("serious", "critical")
    ]


def inspect_page(page, name: str, width_name: str, *, accessibility: bool = True) -> None:
    """The checks every main page passes at every width, and its screenshot for the README."""
    page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width_name}.png"), full_page=True)
    assert_fits_the_window(page)
    if accessibility:
        violations = serious_accessibility_violations(page)
        assert violations == [], f"{page.url}: {violations}"
    assert page.script_errors == [], f"{page.url}: script errors {page.script_errors}"


def wait_for_console(page, base_url: str, instance, *, timeout_ms: int) -> None:
    """Wait for the console page to connect. A console that stays silent is reloaded once, as a person
    would, and the run's warnings say what the first attempt left behind and where the server's
    threads were: a silent console under load is not yet explained."""
    connected = page.locator("#console-screen[data-connected=yes]")
    for attempt in (1, 2):
        try:
            connected.wait_for(timeout=timeout_ms)
            return
        except PlaywrightTimeout:
            seen = _console_attempt(page, base_url, instance)
            if attempt == 2:
                pytest.fail(f"the console did not connect, twice: {seen}")
            warnings.warn(f"a console needed a reload: {seen}", stacklevel=2)
            page.reload()


def _console_attempt(page, base_url: str, instance) -> str:
    """What a console attempt left behind: the page's status, the tickets, the closes, the browser's log."""
    from portal.models import AuditEvent
    from provisioning.models import ConsoleTicket

    tickets = list(ConsoleTicket.objects.filter(instance=instance).values("kind", "used_at", "opened_at", "closed_at"))
    closes = list(AuditEvent.objects.filter(action="console.close").values_list("detail", flat=True))
    return (
        f"status {page.locator('#console-status').inner_text()!r}; "
        f"client script ran: {page.evaluate('typeof window.consoleRfb')}; tickets {tickets}; "
        f"closes {closes}; browser {page.browser_log[-12:]}; server threads:\n{server_threads(base_url)}"
    )

"""The console pages: who sees them, and that they load noVNC and xterm.js from npm, with no secret in them."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.urls import include, path

from portal.urls import urlpatterns as portal_urlpatterns
from tests.provisioning.test_console_helpers import make_running_instance

# portal.urls gets the console pages from the lead's include; until then this module adds them.
urlpatterns = [*portal_urlpatterns, path("", include("provisioning.consoles.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

CONSOLE_STATIC_DIRS = [
    ("vendor/novnc", django_settings.BASE_DIR / "node_modules" / "@novnc" / "novnc"),
    ("vendor/xterm", django_settings.BASE_DIR / "node_modules" / "@xterm" / "xterm"),
    ("vendor/xterm-addon-fit", django_settings.BASE_DIR / "node_modules" / "@xterm" / "addon-fit"),
]
ASSETS = [
    "vendor/novnc/core/rfb.js",
    "vendor/xterm/lib/xterm.mjs",
    "vendor/xterm/css/xterm.css",
    "vendor/xterm-addon-fit/lib/addon-fit.mjs",
]


@pytest.fixture
def instance(project):
    return make_running_instance(project)


@pytest.fixture
def console_assets(settings):
    """The npm folders the pages load from, as portal.settings lists them (added here if it does not yet)."""
    missing = [entry for entry in CONSOLE_STATIC_DIRS if entry not in settings.STATICFILES_DIRS]
    settings.STATICFILES_DIRS = [*settings.STATICFILES_DIRS, *missing]
    finders.get_finder.cache_clear()
    yield
    finders.get_finder.cache_clear()


@pytest.mark.usefixtures("console_assets")
def test_the_npm_assets_are_installed_and_served():
    for asset in ASSETS:
        assert finders.find(asset), f"{asset}: run npm ci (scripts/lib.sh install_assets)"


@pytest.mark.parametrize(
    ("page", "asset"), [("screen", "vendor/novnc/core/rfb.js"), ("serial", "vendor/xterm/lib/xterm.mjs")]
)
def test_a_member_gets_the_console_pages(client, member, instance, page, asset):
    client.force_login(member)
    response = client.get(f"/instances/{instance.pk}/{page}/")
    assert response.status_code == 200
    text = response.content.decode()
    assert f"/static/{asset}" in text
    assert f"/api/v1/instances/{instance.pk}/console/" in text
    assert instance.vnc_password not in text
    assert "Full screen" in text
    assert "Reconnect" in text


def test_the_screen_page_has_ctrl_alt_del_a_clipboard_and_the_serial_log(client, owner, instance):
    client.force_login(owner)
    text = client.get(f"/instances/{instance.pk}/screen/").content.decode()
    assert 'data-key="ctrl-alt-del"' in text
    assert 'id="console-clipboard-send"' in text
    assert f'data-log-url="/api/v1/instances/{instance.pk}/console-log/"' in text
    assert "/static/js/console_vnc.js" in text


@pytest.mark.parametrize("page", ["screen", "serial"])
def test_both_pages_have_the_extra_keys_and_the_status_lines(client, member, instance, page):
    client.force_login(member)
    text = client.get(f"/instances/{instance.pk}/{page}/").content.decode()
    for key in ("Escape", "Tab", "ArrowLeft", "ArrowUp", "ArrowDown", "ArrowRight", "ctrl-c"):
        assert f'data-key="{key}"' in text, key
    assert 'data-modifier="ctrl" aria-pressed="false"' in text
    assert 'data-modifier="alt" aria-pressed="false"' in text
    assert 'id="console-status" role="status"' in text
    assert 'id="console-notice" role="status"' in text
    for asset in ("js/console_session.js", "js/console_keys.js", "css/console.css"):
        assert f"/static/{asset}" in text, asset
    # A serial line has no Ctrl-Alt-Del: only the screen offers it.
    assert ('data-key="ctrl-alt-del"' in text) == (page == "screen")


@pytest.mark.parametrize("page", ["screen", "serial"])
def test_viewers_outsiders_and_strangers_get_no_console_page(client, viewer, outsider, instance, page):
    url = f"/instances/{instance.pk}/{page}/"
    client.force_login(viewer)
    assert client.get(url).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.logout()
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")

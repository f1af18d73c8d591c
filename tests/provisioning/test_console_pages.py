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


def test_the_screen_page_has_ctrl_alt_del_and_a_clipboard(client, owner, instance):
    client.force_login(owner)
    text = client.get(f"/instances/{instance.pk}/screen/").content.decode()
    assert "sendCtrlAltDel" in text
    assert "clipboardPasteFrom" in text


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

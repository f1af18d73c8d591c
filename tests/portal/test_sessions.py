"""A new password ends what the old one opened: the account's API tokens and its other sessions.
And with PORTAL_HTTPS=1 the cookies, HSTS and the proxy's scheme header are set."""

from __future__ import annotations

import runpy

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.auth.views import PasswordChangeView
from django.core import checks
from django.test import Client, override_settings
from django.urls import include, path

import portal.settings
from portal.models import ApiToken, AuditEvent
from portal.tokens import token_issue

# A URLconf for the test below that uses Django's own password-change view as a signed-in user would.
urlpatterns = [
    path("password/", PasswordChangeView.as_view(success_url="/stacks/")),
    path("", include("portal.urls")),
]

NEW_PASSWORD = "a-new-long-passphrase"
SETTINGS_FILE = portal.settings.__file__


def signed_in(user, password="pw") -> Client:
    """A browser that signed in with the password (its own session, as another device would have)."""
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": password})
    assert response.status_code == 302, response.content.decode()
    return client


def still_signed_in(client: Client) -> bool:
    response = client.get("/stacks/")
    assert response.status_code in {200, 302}
    return response.status_code == 200


def bearer(secret: str) -> Client:
    return Client(headers={"authorization": f"Token {secret}"})


def change_password(user, password=NEW_PASSWORD) -> None:
    user.set_password(password)
    user.save()


# -- API tokens ------------------------------------------------------------------------------


def test_a_new_password_revokes_the_accounts_api_tokens(member, outsider):
    _, mine = token_issue(user=member, name="laptop")
    token_issue(user=member, name="ci")
    _, theirs = token_issue(user=outsider, name="theirs")
    assert bearer(mine).get("/api/v1/projects/").status_code == 200

    change_password(member)

    assert not ApiToken.objects.filter(user=member).exists()
    assert bearer(mine).get("/api/v1/projects/").status_code == 401
    assert bearer(theirs).get("/api/v1/projects/").status_code == 200  # nobody else's
    revoked = AuditEvent.objects.filter(action="token.revoke")
    assert revoked.count() == 2
    assert {event.detail["reason"] for event in revoked} == {"password changed"}


def test_disabling_the_password_revokes_tokens_too(member):
    token_issue(user=member)
    member.set_unusable_password()
    member.save()
    assert not ApiToken.objects.filter(user=member).exists()


def test_saves_that_keep_the_password_keep_the_tokens(member, client):
    token_issue(user=member)
    member.first_name = "Mateo"
    member.save()
    member.save(update_fields=["first_name"])
    signed_in(member)  # a sign-in writes last_login
    assert ApiToken.objects.filter(user=member).count() == 1


def test_a_hash_upgrade_at_sign_in_is_not_a_password_change(member):
    # Stored with a weak salt, the hash is rewritten when the password is next checked: same password.
    User.objects.filter(pk=member.pk).update(password=make_password("pw", salt="ab"))
    member.refresh_from_db()
    token_issue(user=member)
    old_hash = member.password
    assert member.check_password("pw")
    member.refresh_from_db()
    assert member.password != old_hash
    assert ApiToken.objects.filter(user=member).count() == 1


# -- sessions --------------------------------------------------------------------------------


def test_a_password_set_anywhere_ends_every_session(member):
    laptop, phone = signed_in(member), signed_in(member)
    change_password(member)
    assert not still_signed_in(laptop)
    assert not still_signed_in(phone)
    assert phone.get("/api/v1/projects/").status_code in {401, 403}  # the API's session authentication too


@pytest.mark.urls("tests.portal.test_sessions")
def test_the_password_change_page_keeps_its_own_session_and_ends_the_others(member):
    here, elsewhere = signed_in(member), signed_in(member)
    _, secret = token_issue(user=member)
    response = here.post(
        "/password/", {"old_password": "pw", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert still_signed_in(here)
    assert not still_signed_in(elsewhere)
    assert bearer(secret).get("/api/v1/projects/").status_code == 401


def test_an_operator_setting_a_password_in_the_admin_ends_that_users_sessions(operator, member):
    admin = signed_in(operator)
    victim = signed_in(member)
    _, secret = token_issue(user=member)
    response = admin.post(
        f"/admin/auth/user/{member.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content.decode()
    assert not still_signed_in(victim)
    assert bearer(secret).get("/api/v1/projects/").status_code == 401
    assert still_signed_in(admin)
    assert signed_in(member, NEW_PASSWORD)


def test_an_operator_changing_their_own_password_in_the_admin_keeps_that_session(operator):
    here, elsewhere = signed_in(operator), signed_in(operator)
    response = here.post(
        "/admin/password_change/",
        {"old_password": "pw", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert still_signed_in(here)
    assert not still_signed_in(elsewhere)


@pytest.mark.django_db(transaction=True)
def test_a_websocket_opened_with_an_old_session_is_refused(member, project, test_host, ready_version):
    from portal.asgi import application
    from provisioning.services import launch

    stack = launch.stack_launch(
        user=member, project=project, name="watched", appliance_version=ready_version, lease_seconds=600
    )
    browser = signed_in(member)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={browser.cookies['sessionid'].value}".encode()
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]

    async def connect() -> tuple[bool, int | None]:
        socket = WebsocketCommunicator(application, f"/ws/stacks/{stack.pk}/", headers=headers)
        connected, code = await socket.connect()
        if connected:
            await socket.disconnect()
        return connected, code

    assert async_to_sync(connect)()[0]
    change_password(member)
    assert async_to_sync(connect)() == (False, 4404)


# -- HTTPS -----------------------------------------------------------------------------------

_TRANSPORT = [
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
]


def portal_settings(monkeypatch, **env: str) -> dict:
    """The portal's settings module run afresh with ``env`` (the live settings are not touched)."""
    for name in (
        "PORTAL_HTTPS",
        "PORTAL_TRUSTED_PROXIES",
        "PORTAL_HSTS_SECONDS",
        "PORTAL_HSTS_INCLUDE_SUBDOMAINS",
        "PORTAL_SSL_REDIRECT",
        "DJANGO_SECURE_COOKIES",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    values = runpy.run_path(SETTINGS_FILE)
    return {name: values.get(name) for name in _TRANSPORT}


def test_plain_http_is_the_default(monkeypatch):
    assert portal_settings(monkeypatch) == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SECURE_SSL_REDIRECT": False,
    }


def test_https_secures_the_cookies_and_sends_hsts(monkeypatch):
    values = portal_settings(monkeypatch, PORTAL_HTTPS="1")
    assert values["SESSION_COOKIE_SECURE"]
    assert values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    # With no proxy trusted nobody may claim the scheme with a header: TLS ends in daphne itself.
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["SECURE_SSL_REDIRECT"] is False


def test_behind_a_trusted_proxy_its_scheme_header_is_believed(monkeypatch):
    values = portal_settings(
        monkeypatch,
        PORTAL_HTTPS="1",
        PORTAL_TRUSTED_PROXIES="1",
        PORTAL_SSL_REDIRECT="1",
        PORTAL_HSTS_SECONDS="600",
        PORTAL_HSTS_INCLUDE_SUBDOMAINS="1",
    )
    assert values["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORTAL_HTTPS", "sometimes", "not a boolean"),
        ("PORTAL_SSL_REDIRECT", "perhaps", "not a boolean"),  # read even while HTTPS is off
        ("PORTAL_TRUSTED_PROXIES", "-1", "below the minimum"),
        ("PORTAL_TRUSTED_PROXIES", "one", "not an integer"),
        ("PORTAL_SIGN_IN_FAILURES_PER_ACCOUNT", "0", "below the minimum"),
    ],
)
def test_malformed_values_stop_the_process(monkeypatch, name, value, message):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match=message):
        portal_settings(monkeypatch, **{name: value})


def test_django_deployment_checks_pass_for_the_transport(monkeypatch, db):
    values = portal_settings(monkeypatch, PORTAL_HTTPS="1", PORTAL_TRUSTED_PROXIES="1", PORTAL_SSL_REDIRECT="1")
    with override_settings(**values):
        found = {message.id for message in checks.run_checks(include_deployment_checks=True, tags=["security"])}
    assert not found & {"security.W004", "security.W008", "security.W012", "security.W016"}


def test_through_the_proxy_responses_carry_hsts_and_secure_cookies(monkeypatch, member):
    values = portal_settings(monkeypatch, PORTAL_HTTPS="1", PORTAL_TRUSTED_PROXIES="1", PORTAL_SSL_REDIRECT="1")
    with override_settings(**values):
        client = Client()
        plain = client.get("/login/")
        assert plain.status_code == 301
        assert plain["Location"].startswith("https://")
        response = client.post(
            "/login/", {"username": member.username, "password": "pw"}, headers={"x-forwarded-proto": "https"}
        )
        assert response.status_code == 302
        assert response["Strict-Transport-Security"] == "max-age=31536000"
        assert response.cookies["sessionid"]["secure"]

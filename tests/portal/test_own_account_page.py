"""The account page: anyone signed in changes their own password and signs out their other sessions.

Bad input first: a wrong or throttled current password, a weak or mismatched new one. Then that a
success keeps this session, ends the others (a stolen cookie among them), and leaves an audit event.
"""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import Client

from portal.models import ApiToken, AuditEvent, Role
from portal.tokens import token_issue
from tests.factories import MembershipFactory, ProjectFactory

NEW_PASSWORD = "correct-horse-battery-staple"


def signed_in(user, password: str = "pw") -> Client:
    """A browser of its own that signed in with the password, as another device would."""
    browser = Client()
    response = browser.post("/login/", {"username": user.username, "password": password})
    assert response.status_code == 302, response.content.decode()
    return browser


def still_signed_in(browser: Client) -> bool:
    return browser.get("/account/").status_code == 200


def change(browser: Client, old: str, new1: str, new2: str | None = None):
    return browser.post(
        "/account/",
        {
            "password-old_password": old,
            "password-new_password1": new1,
            "password-new_password2": new1 if new2 is None else new2,
            "change-password": "1",
        },
    )


def sign_out_others(browser: Client, password: str):
    return browser.post("/account/", {"sessions-password": password, "sign-out-others": "1"})


def field_error(html: str, field_id: str) -> bool:
    """An error shown next to the field and tied to it for screen readers."""
    return f'id="{field_id}_error"' in html and "aria-invalid" in html


# -- who reaches it ---------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")
    assert client.post("/account/", {"sign-out-others": "1", "sessions-password": "pw"}).status_code == 302


def test_a_member_who_is_not_staff_sees_their_projects_roles_and_tokens_link(member, project):
    assert not member.is_staff
    other = ProjectFactory(name="zebra-lab")
    MembershipFactory(project=other, user=member, role=Role.VIEWER)
    token_issue(user=member, name="laptop")
    browser = signed_in(member)
    response = browser.get("/account/")
    assert response.status_code == 200
    html = response.content.decode()
    assert project.name in html
    assert "zebra-lab" in html
    assert "Viewer" in html
    assert "Member" in html
    assert 'href="/account/tokens/"' in html
    assert "1 API token that still works" in html
    assert "no-store" in response["Cache-Control"]


def test_the_project_list_shows_only_the_users_own_memberships(member, outsider, other_project):
    html = signed_in(member).get("/account/").content.decode()
    assert other_project.name not in html


# -- changing the password: bad input ---------------------------------------------------------


def test_a_wrong_current_password_changes_nothing_and_says_so_by_the_field(member):
    browser = signed_in(member)
    response = change(browser, "not-my-password", NEW_PASSWORD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "That is not your current password." in html
    assert field_error(html, "id_password-old_password")
    member.refresh_from_db()
    assert member.check_password("pw")
    assert not AuditEvent.objects.filter(action="account.password_change").exists()


def test_a_weak_new_password_is_refused_by_the_validators(member):
    browser = signed_in(member)
    html = change(browser, "pw", "password").content.decode()
    assert "too common" in html or "too short" in html
    assert field_error(html, "id_password-new_password2")
    member.refresh_from_db()
    assert member.check_password("pw")


def test_two_different_new_passwords_are_refused(member):
    html = change(signed_in(member), "pw", NEW_PASSWORD, NEW_PASSWORD + "x").content.decode()
    assert "didn\u2019t match" in html
    member.refresh_from_db()
    assert member.check_password("pw")


@pytest.fixture
def spent_budgets():
    """The wrong passwords below spend the account's sign-in budget in the shared cache (Redis when the
    suite runs with one), which no database rollback empties: give it back for the tests that follow."""
    yield
    caches["shared"].clear()


def test_wrong_current_passwords_are_throttled_like_sign_ins(member, settings, own_sign_in_budgets, spent_budgets):
    settings.SIGN_IN_FAILURES_PER_ACCOUNT = 3
    browser = signed_in(member)
    for _ in range(3):
        assert "That is not your current password." in change(browser, "guess", NEW_PASSWORD).content.decode()
    # The budget is spent: even the right password is not checked now, and nothing changes.
    html = change(browser, "pw", NEW_PASSWORD).content.decode()
    assert "Too many failed sign-ins" in html
    assert field_error(html, "id_password-old_password")
    member.refresh_from_db()
    assert member.check_password("pw")
    # The sign-out form shares the budget: it cannot be used to guess either.
    assert "Too many failed sign-ins" in sign_out_others(browser, "pw").content.decode()


# -- changing the password: success -----------------------------------------------------------


def test_a_new_password_keeps_this_session_and_ends_the_others(member):
    here, laptop = signed_in(member), signed_in(member)
    response = change(here, "pw", NEW_PASSWORD)
    assert response.status_code == 302
    assert response.url == "/account/#main"
    assert "Your password is changed" in here.get("/account/").content.decode()
    assert still_signed_in(here)
    assert not still_signed_in(laptop)
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    event = AuditEvent.objects.get(action="account.password_change")
    assert event.actor == member
    assert signed_in(member, NEW_PASSWORD)


# -- signing out of the other sessions --------------------------------------------------------


def test_signing_out_others_needs_the_current_password(member):
    here, laptop = signed_in(member), signed_in(member)
    html = sign_out_others(here, "guess").content.decode()
    assert field_error(html, "id_sessions-password")
    assert still_signed_in(laptop)
    html = sign_out_others(here, "").content.decode()
    assert field_error(html, "id_sessions-password")
    assert still_signed_in(laptop)
    assert not AuditEvent.objects.filter(action="account.sessions_end").exists()


def test_a_stolen_session_cookie_stops_working_once_the_owner_signs_out_other_sessions(member):
    owner_browser = signed_in(member)
    thief = Client()
    thief.cookies["sessionid"] = signed_in(member).cookies["sessionid"].value  # copied off the victim's device
    assert still_signed_in(thief)
    _, secret = token_issue(user=member, name="ci")

    response = sign_out_others(owner_browser, "pw")
    assert response.status_code == 302

    assert "Every other session is signed out" in owner_browser.get("/account/").content.decode()
    assert not still_signed_in(thief)
    assert thief.get("/api/v1/projects/").status_code in {401, 403}
    assert still_signed_in(owner_browser)
    # The password is the same, and API tokens are not sessions: they keep working.
    member.refresh_from_db()
    assert member.check_password("pw")
    assert ApiToken.objects.filter(user=member).count() == 1
    assert Client(headers={"authorization": f"Token {secret}"}).get("/api/v1/projects/").status_code == 200
    event = AuditEvent.objects.get(action="account.sessions_end")
    assert event.actor == member


def test_a_thief_with_only_the_cookie_cannot_sign_the_owner_out(member):
    owner_browser = signed_in(member)
    thief = Client()
    thief.cookies["sessionid"] = signed_in(member).cookies["sessionid"].value
    html = sign_out_others(thief, "a-guess").content.decode()
    assert "That is not your current password." in html
    assert still_signed_in(owner_browser)


@pytest.mark.parametrize("user_fixture", ["viewer", "outsider"])
def test_every_kind_of_user_may_use_it(request, user_fixture):
    user = request.getfixturevalue(user_fixture)
    here, other = signed_in(user), signed_in(user)
    assert sign_out_others(here, "pw").status_code == 302
    assert still_signed_in(here)
    assert not still_signed_in(other)

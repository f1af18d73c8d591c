"""A project's members page: everyone in the project sees who is in it; only owners and operators change it."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.models import AuditEvent, Membership, Role
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def as_user(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def newcomer(db):
    return UserFactory(username="nadia")


def members_url(project, suffix=""):
    return f"/projects/{project.pk}/members/{suffix}"


def roles_of(project):
    return dict(Membership.objects.filter(project=project).values_list("user__username", "role"))


def test_member_sees_the_list_without_edit_controls(as_user, project, owner, member, viewer):
    response = as_user(member).get(members_url(project))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("olivia", "mateo", "vera"):
        assert name in html
    assert ">Owner</span>" in html
    assert ">Viewer</span>" in html
    assert "Add a member" not in html
    assert "Change role" not in html
    assert "Remove" not in html


def test_owner_sees_edit_controls(as_user, project, owner, member):
    html = as_user(owner).get(members_url(project)).content.decode()
    assert "Add a member" in html
    assert f'action="{members_url(project, "role/")}"' in html
    assert f'href="{members_url(project, "remove/")}?username=mateo"' in html
    assert '<label class="visually-hidden" for="role-' in html  # every select is labelled


def test_owner_adds_a_member(as_user, project, owner, newcomer):
    response = as_user(owner).post(members_url(project), {"username": "nadia", "role": "viewer"}, follow=True)
    assert response.redirect_chain[-1][0] == members_url(project)
    assert "nadia added to alpha as viewer." in response.content.decode()
    assert roles_of(project)["nadia"] == Role.VIEWER
    assert AuditEvent.objects.filter(action="membership.set").count() == 1


def test_adding_an_unknown_user_explains_on_the_form(as_user, project, owner):
    response = as_user(owner).post(members_url(project), {"username": "ghost", "role": "member"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "There is no user called ghost who can sign in: check the spelling" in html
    assert "is-invalid" in html
    # Above the form, where the focus goes, a summary links to the field.
    assert "data-error-summary" in html
    assert '<a class="alert-link" href="#id_username">User name</a>' in html
    assert "Nothing was changed" in html
    assert "ghost" not in roles_of(project)


def test_owner_changes_a_role(as_user, project, owner, member):
    response = as_user(owner).post(members_url(project, "role/"), {"username": "mateo", "role": "owner"}, follow=True)
    assert "mateo is now owner in alpha." in response.content.decode()
    assert roles_of(project)["mateo"] == Role.OWNER


def test_the_role_form_does_not_add_newcomers(as_user, project, owner, newcomer):
    response = as_user(owner).post(members_url(project, "role/"), {"username": "nadia", "role": "owner"}, follow=True)
    assert "Nothing was changed: nadia is not in alpha." in response.content.decode()
    assert "nadia" not in roles_of(project)


def test_the_last_owner_cannot_step_down(as_user, project, owner, member):
    response = as_user(owner).post(members_url(project, "role/"), {"username": "olivia", "role": "member"}, follow=True)
    assert "must keep at least one owner" in response.content.decode()
    assert roles_of(project)["olivia"] == Role.OWNER


def test_remove_asks_first_then_removes(as_user, project, owner, member):
    web = as_user(owner)
    confirm = web.get(members_url(project, "remove/") + "?username=mateo")
    assert confirm.status_code == 200
    assert "Remove mateo from alpha?" in confirm.content.decode()
    assert "mateo" in roles_of(project)

    response = web.post(members_url(project, "remove/"), {"username": "mateo"}, follow=True)
    assert "mateo removed from alpha." in response.content.decode()
    assert "mateo" not in roles_of(project)


def test_the_last_owner_cannot_leave(as_user, project, owner):
    response = as_user(owner).post(members_url(project, "remove/"), {"username": "olivia"}, follow=True)
    assert "must keep at least one owner" in response.content.decode()
    assert roles_of(project) == {"olivia": Role.OWNER}


def test_an_owner_who_leaves_lands_on_the_dashboard(as_user, project, owner):
    MembershipFactory(project=project, role=Role.OWNER, user__username="otto")
    response = as_user(owner).post(members_url(project, "remove/"), {"username": "olivia"})
    assert response.status_code == 302
    assert response.url == "/"


def test_operator_manages_any_project(as_user, project, owner, operator, newcomer):
    html = as_user(operator).get(members_url(project)).content.decode()
    assert "Add a member" in html
    as_user(operator).post(members_url(project), {"username": "nadia", "role": "member"})
    assert roles_of(project)["nadia"] == Role.MEMBER


@pytest.mark.parametrize(
    ("suffix", "data"),
    [
        ("", {"username": "nadia", "role": "owner"}),
        ("role/", {"username": "vera", "role": "owner"}),
        ("remove/", {"username": "olivia"}),
    ],
)
@pytest.mark.parametrize("who", ["viewer", "member"])
def test_viewers_and_members_cannot_change_members(
    as_user, request, project, owner, viewer, member, newcomer, who, suffix, data
):
    before = roles_of(project)
    response = as_user(request.getfixturevalue(who)).post(members_url(project, suffix), data)
    assert response.status_code == 403
    assert "You may not do that" in response.content.decode()
    assert roles_of(project) == before
    assert not AuditEvent.objects.filter(action__startswith="membership.").exists()


def test_viewer_does_not_get_the_remove_page(as_user, project, owner, viewer):
    assert as_user(viewer).get(members_url(project, "remove/") + "?username=olivia").status_code == 403


@pytest.mark.parametrize(
    ("method", "suffix", "data"),
    [
        ("get", "", {}),
        ("post", "", {"username": "oscar", "role": "owner"}),
        ("post", "role/", {"username": "oscar", "role": "owner"}),
        ("get", "remove/", {"username": "olivia"}),
        ("post", "remove/", {"username": "olivia"}),
    ],
)
def test_outsider_naming_another_project_gets_404(as_user, project, owner, outsider, method, suffix, data):
    before = roles_of(project)
    response = getattr(as_user(outsider), method)(members_url(project, suffix), data)
    assert response.status_code == 404
    assert roles_of(project) == before


def test_unknown_project_is_404(as_user, owner):
    assert as_user(owner).get("/projects/999999/members/").status_code == 404


def test_csrf_is_required(project, owner, newcomer):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    assert browser.post(members_url(project), {"username": "nadia", "role": "owner"}).status_code == 403
    assert browser.post(members_url(project, "remove/"), {"username": "olivia"}).status_code == 403
    assert roles_of(project) == {"olivia": Role.OWNER}

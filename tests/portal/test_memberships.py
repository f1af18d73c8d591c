"""Owners manage their project's members; nobody else can, and a project never loses its last owner."""

from __future__ import annotations

from portal.models import AuditEvent, Membership, Role
from tests.factories import UserFactory


def members(client, project) -> dict[str, str]:
    response = client.get(f"/api/v1/projects/{project.pk}/members/")
    assert response.status_code == 200
    return {row["username"]: row["role"] for row in response.json()}


def test_owner_adds_changes_and_removes(owner, member, project, api):
    newcomer = UserFactory(username="nina")
    client = api(owner)
    url = f"/api/v1/projects/{project.pk}/members/"
    assert client.post(url, {"username": "nina", "role": "viewer"}, format="json").status_code == 200
    assert members(client, project)["nina"] == "viewer"
    assert client.post(url, {"username": "nina", "role": "member"}, format="json").json()["role"] == "member"
    assert client.delete(f"{url}nina/").status_code == 204
    assert not Membership.objects.filter(user=newcomer).exists()
    assert AuditEvent.objects.filter(action__startswith="membership.").count() == 3


def test_members_may_look_but_not_change(owner, member, project, api):
    client = api(member)
    assert set(members(client, project)) == {"olivia", "mateo"}
    response = client.post(f"/api/v1/projects/{project.pk}/members/", {"username": "mateo", "role": "owner"})
    assert response.status_code == 403
    assert Membership.objects.get(user=member).role == Role.MEMBER


def test_outsiders_get_404(owner, outsider, project, api):
    client = api(outsider)
    assert client.get(f"/api/v1/projects/{project.pk}/members/").status_code == 404
    assert client.delete(f"/api/v1/projects/{project.pk}/members/olivia/").status_code == 404


def test_the_last_owner_stays(owner, project, api):
    client = api(owner)
    url = f"/api/v1/projects/{project.pk}/members/"
    demote = client.post(url, {"username": "olivia", "role": "member"}, format="json")
    assert demote.status_code == 400
    assert "at least one owner" in str(demote.json())
    assert client.delete(f"{url}olivia/").status_code == 400
    assert Membership.objects.get(user=owner).role == Role.OWNER


def test_unknown_user_and_bad_role_are_400(owner, project, api):
    url = f"/api/v1/projects/{project.pk}/members/"
    assert api(owner).post(url, {"username": "ghost", "role": "member"}, format="json").status_code == 400
    assert api(owner).post(url, {"username": "olivia", "role": "god"}, format="json").status_code == 400

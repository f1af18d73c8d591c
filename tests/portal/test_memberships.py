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
    """A well-formed request the project's state refuses: a conflict (409), not bad input (400)."""
    client = api(owner)
    url = f"/api/v1/projects/{project.pk}/members/"
    demote = client.post(url, {"username": "olivia", "role": "member"}, format="json")
    assert demote.status_code == 409
    assert demote.json() == {
        "code": "invalid_state",
        "detail": "project alpha must keep at least one owner: make someone else an owner first",
        "fields": {"role": ["project alpha must keep at least one owner: make someone else an owner first"]},
    }
    leave = client.delete(f"{url}olivia/")
    assert leave.status_code == 409
    assert leave.json() == {
        "code": "invalid_state",
        "detail": "project alpha must keep at least one owner: make someone else an owner first",
    }
    assert Membership.objects.get(user=owner).role == Role.OWNER


def test_the_last_owner_conflict_is_documented(owner, api):
    schema = api(owner).get("/api/v1/schema/", {"format": "json"}).json()
    members = schema["paths"]["/api/v1/projects/{id}/members/"]["post"]["responses"]
    remove = schema["paths"]["/api/v1/projects/{id}/members/{username}/"]["delete"]["responses"]
    assert "409" in members
    assert "409" in remove
    # Reading the members conflicts with nothing.
    assert "409" not in schema["paths"]["/api/v1/projects/{id}/members/"]["get"]["responses"]


def test_unknown_user_and_bad_role_are_400(owner, project, api):
    url = f"/api/v1/projects/{project.pk}/members/"
    assert api(owner).post(url, {"username": "ghost", "role": "member"}, format="json").status_code == 400
    assert api(owner).post(url, {"username": "olivia", "role": "god"}, format="json").status_code == 400

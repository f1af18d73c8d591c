"""``/api/v1/projects/{id}/policy/``: refusals first (roles, outsiders, bad values, webhooks that
point inward), then what owners may change and what everyone reads."""

from __future__ import annotations

import pytest
from django.conf import settings

from portal.models import AuditEvent, Project
from tests.notices.conftest import SECRET


def url(project: Project) -> str:
    return f"/api/v1/projects/{project.pk}/policy/"


def test_viewers_and_members_may_read_but_not_change(api, project, viewer, member):
    for person in (viewer, member):
        client = api(person)
        assert client.get(url(project)).status_code == 200
        response = client.patch(url(project), {"run_lease": 600}, format="json")
        assert response.status_code == 403, person
        assert response.json()["code"] == "permission_denied"
    project.refresh_from_db()
    assert project.run_lease_seconds == 4 * 3600


def test_an_outsider_sees_no_policy_of_another_project(api, project, outsider):
    client = api(outsider)
    for answer in (client.get(url(project)), client.patch(url(project), {"run_lease": 600}, format="json")):
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
    assert client.get("/api/v1/projects/99999999/policy/").status_code == 404
    assert client.get(f"/api/v1/projects/{2**64}/policy/").status_code == 404  # past any id column
    assert api(None).get(url(project)).status_code == 401


def test_a_run_lease_longer_than_the_longest_life_is_refused(api, project, owner):
    client = api(owner)
    response = client.patch(url(project), {"run_lease": 7200, "max_life": 3600}, format="json")
    assert response.status_code == 400
    assert "run_lease" in response.json()["fields"]
    # A longest life under the stored run lease (4 hours) is refused the same way.
    response = client.patch(url(project), {"max_life": 3 * 3600}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["max_life"]
    assert client.patch(url(project), {"max_life": 5 * 3600}, format="json").status_code == 200
    response = client.patch(url(project), {"run_lease": 6 * 3600}, format="json")  # against the stored max_life
    assert response.status_code == 400
    assert "run_lease" in response.json()["fields"]
    project.refresh_from_db()
    assert (project.run_lease_seconds, project.max_lease_seconds) == (4 * 3600, 5 * 3600)


BAD_BODIES = [
    ({"run_lease": 30}, "run_lease"),
    ({"run_lease": settings.MAX_LEASE_SECONDS + 1}, "run_lease"),
    ({"storage_lease": 0}, "storage_lease"),
    ({"max_life": 59}, "max_life"),
    ({"max_extension": 59}, "max_extension"),
    ({"at_run_end": "explode"}, "at_run_end"),
    ({"warn_before": list(range(60, 60 * 12, 60))}, "warn_before"),  # 11 warnings
    ({"warn_before": [600, 600]}, "warn_before"),
    ({"warn_before": [0]}, "warn_before"),
    ({"warn_before": [31 * 24 * 3600]}, "warn_before"),
    ({"warn_before": ["600"]}, "warn_before"),
    ({"warn_before": [600.0]}, "warn_before"),
    ({"warn_before": 600}, "warn_before"),
    ({"idle_after": 10}, "idle_after"),
    ({"run_lease": "600"}, "run_lease"),
    ({"webhook_secret": "short"}, "webhook_secret"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_values_are_refused_on_their_field(api, project, owner, body, field):
    response = api(owner).patch(url(project), body, format="json")
    assert response.status_code == 400, body
    assert field in response.json()["fields"], response.json()


@pytest.mark.parametrize(
    "address",
    [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0:8080/",
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "http://user:password@127.0.0.1/hook",
        "not a url",
    ],
)
def test_a_webhook_that_points_inward_or_is_no_http_url_is_refused_at_save(api, project, owner, address):
    response = api(owner).patch(url(project), {"webhook_url": address, "webhook_secret": SECRET}, format="json")
    assert response.status_code == 400, address
    assert list(response.json()["fields"]) == ["webhook_url"]
    project.refresh_from_db()
    assert (project.webhook_url, project.webhook_secret) == ("", "")


def test_a_private_address_is_refused_unless_operators_allow_its_host(api, project, owner, settings):
    settings.FETCH_ALLOWED_PRIVATE_HOSTS = []
    body = {"webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": SECRET}
    response = api(owner).patch(url(project), body, format="json")
    assert response.status_code == 400
    assert "non-public address" in response.json()["detail"]
    settings.FETCH_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    assert api(owner).patch(url(project), body, format="json").status_code == 200


def test_a_webhook_needs_a_secret(api, project, owner):
    response = api(owner).patch(url(project), {"webhook_url": "http://127.0.0.1:9/hook"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["webhook_secret"]


def test_an_owner_changes_the_policy_and_the_secret_is_never_returned(api, project, owner):
    body = {
        "run_lease": 3600,
        "at_run_end": "delete",
        "storage_lease": 2 * 86400,
        "max_extension": 7200,
        "max_life": 86400,
        "warn_before": [600, 3600],
        "idle_after": 1800,
        "webhook_url": "http://127.0.0.1:9/hook",
        "webhook_secret": SECRET,
    }
    response = api(owner).patch(url(project), body, format="json")
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert answer == {
        **{key: value for key, value in body.items() if key != "webhook_secret"},
        "warn_before": [3600, 600],  # kept longest first
        "webhook_secret_set": True,
    }
    assert SECRET not in response.content.decode()
    assert SECRET not in api(owner).get(url(project)).content.decode()
    project.refresh_from_db()
    assert (project.run_lease_seconds, project.at_run_end, project.webhook_secret) == (3600, "delete", SECRET)
    audit = AuditEvent.objects.get(action="project.policy_update")
    assert SECRET not in str(audit.detail)
    assert audit.detail["changes"]["webhook_secret"] == "changed"
    assert audit.detail["changes"]["run_lease_seconds"] == [4 * 3600, 3600]


def test_only_those_who_may_change_the_webhook_read_its_url(api, project, owner, member):
    hook = "http://127.0.0.1:9/hooks/T0123/very-secret-path"
    api(owner).patch(url(project), {"webhook_url": hook, "webhook_secret": SECRET}, format="json")
    assert api(owner).get(url(project)).json()["webhook_url"] == hook
    seen = api(member).get(url(project)).json()
    assert seen["webhook_url"] == "http://127.0.0.1:9/…"
    assert seen["webhook_secret_set"] is True


def test_null_removes_the_webhook_and_its_secret(api, project, owner):
    client = api(owner)
    client.patch(url(project), {"webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": SECRET}, format="json")
    response = client.patch(url(project), {"webhook_url": None}, format="json")
    assert response.status_code == 200
    assert (response.json()["webhook_url"], response.json()["webhook_secret_set"]) == (None, False)
    project.refresh_from_db()
    assert (project.webhook_url, project.webhook_secret) == ("", "")


def test_an_empty_patch_changes_nothing_and_writes_no_audit(api, project, owner):
    assert api(owner).patch(url(project), {}, format="json").status_code == 200
    assert not AuditEvent.objects.filter(action="project.policy_update").exists()


def test_idle_after_may_be_cleared(api, project, owner):
    client = api(owner)
    client.patch(url(project), {"idle_after": 600}, format="json")
    assert client.patch(url(project), {"idle_after": None}, format="json").json()["idle_after"] is None


def test_the_schema_describes_the_policy_and_stays_valid(api, member):
    from drf_spectacular.validation import validate_schema

    schema = api(member).get("/api/v1/schema/", {"format": "json"}).json()
    validate_schema(schema)
    operations = schema["paths"]["/api/v1/projects/{id}/policy/"]
    assert set(operations) == {"get", "patch"}
    assert {"401", "404"} <= set(operations["get"]["responses"])
    assert {"400", "401", "403", "404"} <= set(operations["patch"]["responses"])
    change = schema["components"]["schemas"]["PatchedPolicyChangeRequest"]
    assert change["additionalProperties"] is False
    assert change["properties"]["warn_before"]["maxItems"] == 10
    assert change["properties"]["webhook_secret"]["writeOnly"] is True
    assert "webhook_secret" not in schema["components"]["schemas"]["Policy"]["properties"]


def test_only_operators_lengthen_the_longest_life(api, project, owner, operator):
    project.max_lease_seconds = 86400
    project.save()
    response = api(owner).patch(url(project), {"max_life": 2 * 86400}, format="json")
    assert response.status_code == 403
    assert "only operators may lengthen" in response.json()["detail"]
    assert api(owner).patch(url(project), {"max_life": 43200}, format="json").status_code == 200
    assert api(operator).patch(url(project), {"max_life": 2 * 86400}, format="json").status_code == 200
    project.refresh_from_db()
    assert project.max_lease_seconds == 2 * 86400

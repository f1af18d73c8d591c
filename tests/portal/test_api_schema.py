"""What the OpenAPI schema states, and that the API does what it states (the contract test's
findings, each pinned by a small test)."""

from __future__ import annotations

import pytest
from django.conf import settings

from provisioning.name_rules import STACK_NAME, TEMPLATE_NAME
from tests.factories import ProjectFactory


@pytest.fixture
def schema(api, member):
    response = api(member).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _request_schema(schema: dict, path: str, method: str) -> dict:
    reference = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][reference.rsplit("/", 1)[1]]


def test_every_operation_documents_its_errors_with_the_error_body(schema):
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = {int(code) for code in operation["responses"]}
            errors = {code for code in statuses if code >= 400}
            assert errors, f"{method} {path}"
            for code in errors:
                content = operation["responses"][str(code)]["content"]["application/json"]
                assert content["schema"] == error, f"{method} {path} {code}"
            if "{" in path:
                assert 404 in statuses, f"{method} {path}"
            if path != "/api/v1/auth/token/":
                assert 401 in statuses, f"{method} {path}"
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"code", "detail"}


def test_conflicts_are_documented_where_they_happen(schema):
    assert "409" in schema["paths"]["/api/v1/stacks/"]["post"]["responses"]  # no host has room
    assert "409" in schema["paths"]["/api/v1/stacks/{id}/lease/"]["post"]["responses"]
    assert "409" in schema["paths"]["/api/v1/instances/{id}/console/"]["post"]["responses"]
    assert "409" not in schema["paths"]["/api/v1/templates/"]["post"]["responses"]


def test_request_bodies_are_json(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert list(operation["requestBody"]["content"]) == ["application/json"], f"{method} {path}"


def test_constraints_are_the_ones_the_server_checks(schema):
    stack = _request_schema(schema, "/api/v1/stacks/", "post")
    assert stack["properties"]["name"]["pattern"] == f"^(?:{STACK_NAME.pattern.pattern})$"
    assert stack["properties"]["lease"]["minimum"] == settings.MIN_LEASE_SECONDS
    assert stack["properties"]["lease"]["maximum"] == settings.MAX_LEASE_SECONDS
    assert stack["oneOf"] == [{"required": ["template"]}, {"required": ["appliance"]}]
    assert stack["additionalProperties"] is False
    lease = _request_schema(schema, "/api/v1/stacks/{id}/lease/", "post")
    assert (lease["properties"]["lease"]["minimum"], lease["properties"]["lease"]["maximum"]) == (
        settings.MIN_LEASE_SECONDS,
        settings.MAX_LEASE_SECONDS,
    )
    template = _request_schema(schema, "/api/v1/templates/", "post")
    assert template["properties"]["name"]["pattern"] == f"^(?:{TEMPLATE_NAME.pattern.pattern})$"
    assert template["oneOf"] == [{"required": ["source"]}, {"required": ["document"]}]
    quota = schema["components"]["schemas"]["ProjectQuotaRequest"]
    assert quota["properties"]["instances"]["minimum"] == 0
    assert quota["additionalProperties"] is False


def test_the_members_list_is_documented_as_the_plain_list_it_is(schema, api, owner, project):
    response = schema["paths"]["/api/v1/projects/{id}/members/"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"]["type"] == "array"
    assert "limit" not in str(schema["paths"]["/api/v1/projects/{id}/members/"]["get"].get("parameters", []))
    assert isinstance(api(owner).get(f"/api/v1/projects/{project.pk}/members/").json(), list)


def test_list_pages_refuse_what_they_cannot_read(api, member):
    client = api(member)
    assert client.get("/api/v1/stacks/", {"limit": "2"}).status_code == 200
    for query in ({"limit": "0"}, {"limit": "abc"}, {"limit": "1001"}, {"offset": "-1"}, {"offset": "null"}):
        response = client.get("/api/v1/stacks/", query)
        assert response.status_code == 400, query
        assert response.json()["code"] == "invalid"


def test_filtering_by_a_project_one_cannot_see_is_an_empty_page_not_an_oracle(api, member, db):
    hidden = ProjectFactory(name="hidden")
    client = api(member)
    for project_id in (hidden.pk, 999_999):  # existing elsewhere or not at all: the same answer
        response = client.get("/api/v1/stacks/", {"project": project_id})
        assert response.status_code == 200
        assert response.json()["results"] == []
    assert client.get("/api/v1/stacks/", {"project": "abc"}).status_code == 400


def test_an_empty_filter_is_refused_not_read_as_no_filter(api, member):
    for path, query in (("/api/v1/feeds/", {"last_status": ""}), ("/api/v1/stacks/", {"project": ""})):
        response = api(member).get(path, query)
        assert response.status_code == 400, path
        assert list(response.json()["fields"]) == list(query)


def test_json_values_must_have_their_fields_type(api, owner, project):
    client = api(owner)
    url = f"/api/v1/projects/{project.pk}/members/"
    for body in ({"username": 7, "role": "member"}, {"username": "mateo", "role": True}):
        response = client.post(url, body, format="json")
        assert response.status_code == 400, body
    response = client.post(url, {"username": "mateo", "role": "member", "note": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"note": ["unknown field"]}


def test_form_posts_stay_lenient_because_forms_have_no_types(api, owner, member, project):
    response = api(owner).post(f"/api/v1/projects/{project.pk}/members/", {"username": "mateo", "role": "viewer"})
    assert response.status_code == 200


def test_a_patch_without_quota_changes_nothing(api, operator, project):
    response = api(operator).patch(f"/api/v1/projects/{project.pk}/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["quota"]["instances"] == project.max_instances


def test_removing_someone_who_is_not_a_member_is_404(api, owner, project):
    response = api(owner).delete(f"/api/v1/projects/{project.pk}/members/nobody/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unknown_api_paths_answer_with_the_error_body(api, member):
    for path in ("/api/v1/nothing/", "/api/v1/hosts/1.5/drain/"):
        response = api(member).post(path)
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "detail": "no such API endpoint"}


def test_options_on_the_console_action_describes_it(api, member):
    response = api(member).options("/api/v1/instances/1/console/")
    assert response.status_code == 200

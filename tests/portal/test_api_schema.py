"""What the OpenAPI schema states, and that the API does what it states (the contract test's
findings, each pinned by a small test)."""

from __future__ import annotations

import pytest
from django.conf import settings

from provisioning.name_rules import STACK_NAME, TEMPLATE_NAME
from provisioning.template_limits import MAX_DEPENDENCIES, MAX_SETTINGS, MAX_TIERS
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


def test_the_schema_is_valid_openapi(schema):
    from drf_spectacular.validation import validate_schema

    validate_schema(schema)


def _document_schema(schema: dict) -> dict:
    template = _request_schema(schema, "/api/v1/templates/", "post")
    reference = template["properties"]["document"]["$ref"]
    return schema["components"]["schemas"][reference.rsplit("/", 1)[1]]


def test_the_template_document_is_described_with_its_tiers(schema):
    document = _document_schema(schema)
    assert document["required"] == ["tiers"]
    assert document["additionalProperties"] is False
    tiers = document["properties"]["tiers"]
    assert (tiers["minItems"], tiers["maxItems"]) == (1, MAX_TIERS)
    tier = tiers["items"]
    assert tier["required"] == ["name", "appliance"]
    assert set(tier["properties"]) == {
        *("name", "appliance", "version", "flavor", "vcpus", "memory_mib", "disk_gib"),
        *("count", "depends_on", "publish", "settings"),
    }
    assert tier["properties"]["depends_on"]["maxItems"] == MAX_DEPENDENCIES
    assert tier["properties"]["settings"]["maxProperties"] == MAX_SETTINGS
    stored = schema["components"]["schemas"]["Template"]["properties"]["document"]
    assert "TemplateDocument" in str(stored)


# Documents at the edges of what the schema allows: each must be accepted, or the schema promises too much.
_BIG_TIER = {
    "name": "a" * 15,
    "appliance": "A" + "x" * 99,
    "version": "v" * 50,
    "vcpus": 64,
    "memory_mib": 256 * 1024,
    "disk_gib": 2048,
    "count": 10,
    "publish": list(range(65528, 65536)),
    "settings": {f"s{i}": [True, 2**63 - 1, -1.5e18, "x" * 100][i % 4] for i in range(32)},
}
SCHEMA_VALID = [
    {"tiers": [{"name": "web", "appliance": "demo-web"}]},
    {"tiers": [_BIG_TIER], "description": "d" * 1000},
    {
        "tiers": [
            {"name": f"t{i}", "appliance": "a", "flavor": "small", "depends_on": [f"t{j}" for j in range(i)][:9]}
            for i in range(10)
        ]
    },
    {
        "tiers": [
            {"name": "db", "appliance": "a"},
            {"name": "web", "appliance": "a", "depends_on": [{"tier": "db", "wait_for_port": True}]},
        ]
    },
]
SCHEMA_INVALID = [
    {},
    {"tiers": []},
    {"tiers": [{"name": "web"}]},
    {"tiers": [{"name": "web", "appliance": "a", "flavor": "small", "vcpus": 2}]},
    {"tiers": [{"name": "web", "appliance": "a", "depends_on": ["b"] * 10}]},
    {"tiers": [{"name": "web", "appliance": "a", "publish": [80, 80]}]},
    {"tiers": [{"name": "web", "appliance": "a", "settings": {"x": 2**63}}]},
    {"tiers": [{"name": "web", "appliance": "a", "settings": {"x": None}}]},
    {"tiers": [{"name": "web", "appliance": "a", "settings": {f"s{i}": 1 for i in range(33)}}]},
    {"tiers": [{"name": "web", "appliance": "a", "colour": "red"}]},
]


def test_schema_valid_documents_are_accepted_and_the_schema_refuses_what_the_server_does(schema, api, member, project):
    import jsonschema

    validator = jsonschema.Draft4Validator(_document_schema(schema))  # OpenAPI 3.0's schemas are draft 4's
    client = api(member)
    for index, document in enumerate(SCHEMA_VALID):
        validator.validate(document)
        body = {"name": f"edge-{index}", "project": project.pk, "document": document}
        response = client.post("/api/v1/templates/", body, format="json")
        assert response.status_code == 201, (document, response.json())
    for document in SCHEMA_INVALID:
        assert not validator.is_valid(document), document
        body = {"name": "refused", "project": project.pk, "document": document}
        assert client.post("/api/v1/templates/", body, format="json").status_code == 400, document


def test_a_document_read_from_the_api_can_be_sent_back_as_it_is(api, member, project):
    source = (
        "tiers: [{name: db, appliance: a, flavor: small, settings: {x: 1}},"
        " {name: web, appliance: a, vcpus: 2, depends_on: [db], publish: [80]}]"
    )
    client = api(member)
    created = client.post("/api/v1/templates/", {"name": "t", "project": project.pk, "source": source}, format="json")
    document = created.json()["document"]
    assert document["tiers"][0]["vcpus"] is None  # every key is written, null where nothing was given
    url = f"/api/v1/templates/{created.json()['id']}/"
    response = client.put(url, {"name": "t", "document": document}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["document"] == document


def test_null_is_an_optional_value_left_out_and_the_schema_says_so(schema, api, member, project):
    tier = _document_schema(schema)["properties"]["tiers"]["items"]
    assert tier["properties"]["count"]["nullable"] is True
    document = {"tiers": [{"name": "web", "appliance": "a", "count": None, "flavor": None, "vcpus": 2}]}
    body = {"name": "nulls", "project": project.pk, "document": document}
    assert api(member).post("/api/v1/templates/", body, format="json").status_code == 201


def test_a_json_document_gives_its_version_as_text(api, member, project):
    """YAML's `version: 1.10` is a number; in a JSON body the schema says text, so a number is refused."""
    document = {"tiers": [{"name": "web", "appliance": "a", "version": 1.10}]}
    response = api(member).post(
        "/api/v1/templates/", {"name": "v", "project": project.pk, "document": document}, format="json"
    )
    assert response.status_code == 400
    assert "tiers[0].version" in response.json()["fields"]

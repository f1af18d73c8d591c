"""The API docs page is a way in: the portal's navigation, how to authenticate, and a summary per operation."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def schema(api, member):
    response = api(member).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_every_operation_has_a_summary(schema):
    operations = _operations(schema)
    assert len(operations) > 50  # the whole API, not an empty schema
    missing = [f"{method} {path}" for method, path, operation in operations if not operation.get("summary", "").strip()]
    assert missing == []


def test_summaries_tell_operations_apart(schema):
    seen: dict[str, str] = {}
    for method, path, operation in _operations(schema):
        summary = operation["summary"]
        assert summary not in seen, f"{method} {path} and {seen[summary]} share '{summary}'"
        seen[summary] = f"{method} {path}"


def test_the_docs_page_has_the_portals_navigation(client, member):
    client.force_login(member)
    html = client.get("/api/v1/docs/").content.decode()
    assert 'aria-label="Main"' in html
    assert 'href="/"' in html  # back to the dashboard
    assert 'href="/catalog/"' in html
    assert 'href="/stacks/"' in html
    assert 'id="swagger-ui"' in html


def test_the_docs_page_introduces_authentication(client, member):
    client.force_login(member)
    html = client.get("/api/v1/docs/").content.decode()
    assert 'href="/account/tokens/"' in html
    assert "Authorization: Token &lt;your token&gt;" in html
    assert re.search(r'curl -H "Authorization: Token \$PORTAL_TOKEN" http://testserver/api/v1/stacks/', html)
    assert "?project=&lt;id&gt;" in html
    assert f"{settings.SIGN_IN_FAILURES_PER_ADDRESS} from one address" in html
    assert "Retry-After" in html
    for name in ("code", "detail", "fields"):
        assert f"<code>{name}</code>" in html


def test_a_signed_out_reader_gets_the_introduction_and_a_way_to_sign_in(client, db):
    html = client.get("/api/v1/docs/").content.decode()
    assert "(after signing in)" in html
    assert 'href="/account/tokens/"' in html


def test_the_error_example_is_the_body_the_api_sends(api, member):
    answer = api(member).post("/api/v1/stacks/", {}, format="json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "invalid"
    assert set(body) == {"code", "detail", "fields"}


def test_operations_are_not_deep_links_nested_in_their_buttons(client, member):
    client.force_login(member)
    script = client.get("/api/v1/docs/?script=").content.decode()
    assert '"deepLinking": false' in script
    assert '"validatorUrl": null' in script

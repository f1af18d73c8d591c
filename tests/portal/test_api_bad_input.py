"""Bodies written to break the API: each answers 400 with the error body, and anything the server did
not expect answers 500 with the error body too, never an HTML page and never the exception's text.
The same template texts sent through the web form come back on the form."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.urls import reverse
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from portal.api.parsers import JSONParser
from provisioning.models import StackTemplate
from provisioning.services import templates

TEMPLATES = "/api/v1/templates/"
HOSTILE_SOURCES = {
    "keys that are not text": "tiers: [{name: web, appliance: a, 1: x, b: y}]\nnull: 1",
    "deep YAML": "[" * 5000 + "]" * 5000,
    "deep JSON": '{"tiers": ' + "[" * 5000 + "]" * 5000 + "}",
    "long number in YAML": "tiers: [{name: web, appliance: a, count: " + "9" * 5000 + "}]",
    "long number in JSON": '{"tiers": [{"name": "web", "appliance": "a", "count": ' + "9" * 5000 + "}]}",
    "hex number too long to print": "tiers: [{name: web, appliance: a, settings: {x: 0x" + "f" * 5000 + "}}]",
    "NUL in a setting": 'tiers: [{name: web, appliance: a, settings: {x: "a\\0b"}}]',
    "unpaired surrogate in a setting": 'tiers: [{name: web, appliance: a, settings: {x: "\\ud800"}}]',
    "30,000 dependencies": "tiers: [{name: web, appliance: a, depends_on: [" + ",".join(["b"] * 30000) + "]}]",
}


def _error_body(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) <= {"code", "detail", "fields"}
    assert isinstance(body["detail"], str)
    return body


@pytest.mark.parametrize("source", HOSTILE_SOURCES.values(), ids=HOSTILE_SOURCES.keys())
def test_hostile_template_text_is_a_400_with_the_error_body(api, member, project, source):
    response = api(member).post(TEMPLATES, {"name": "evil", "project": project.pk, "source": source}, format="json")
    assert _error_body(response)["code"] == "invalid"
    assert not StackTemplate.objects.exists()


@pytest.mark.parametrize("source", HOSTILE_SOURCES.values(), ids=HOSTILE_SOURCES.keys())
def test_hostile_template_text_in_the_web_form_is_shown_on_the_form(client, member, project, source):
    client.force_login(member)
    response = client.post(reverse("template-create"), {"name": "evil", "project": project.pk, "source": source})
    assert response.status_code == 200
    assert "The template was not saved" in response.content.decode()
    assert not StackTemplate.objects.exists()


def _nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_a_document_nested_deep_enough_to_break_json_dumps_is_a_400(api, member, project):
    document = {"tiers": [{"name": "web", "appliance": "a", "settings": {"x": _nested(900)}}]}
    response = api(member).post(
        TEMPLATES,
        json.dumps({"name": "evil", "project": project.pk, "document": document}),
        content_type="application/json",
    )
    assert _error_body(response)["code"] == "invalid"


def test_a_document_is_checked_by_path_before_it_is_written_out_as_text(api, member, project):
    document = {"tiers": [{"name": "web", "appliance": "a", "settings": {"x": 10**4000}}]}
    response = api(member).post(TEMPLATES, {"name": "e", "project": project.pk, "document": document}, format="json")
    body = _error_body(response)
    assert "digits" in body["fields"]["tiers[0].settings.x"][0]


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 5000 + "]" * 5000,
        '{"name": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"name": "\\ud800", "source": "tiers: []"}',
        '{"\\udfff": 1}',
        '{"name": "x", "lease": ' + "9" * 5000 + "}",
        '{"name": NaN}',
    ],
    ids=["deep list", "deep value", "unpaired surrogate", "unpaired surrogate key", "5000 digits", "NaN"],
)
@pytest.mark.parametrize("path", [TEMPLATES, "/api/v1/stacks/", "/api/v1/tokens/"])
def test_bodies_no_parser_should_take_are_a_400(api, member, raw, path):
    response = api(member).post(path, raw, content_type="application/json")
    if path == "/api/v1/tokens/":  # read-only: the method is refused before the body is read
        assert response.status_code == 405
        return
    assert _error_body(response)["code"] == "invalid"


def test_a_body_larger_than_django_takes_is_a_400(api, member, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"name": "big", "source": "#" * 2000})
    response = api(member).post(TEMPLATES, body, content_type="application/json")
    assert _error_body(response)["code"] == "invalid"


def test_the_parser_stops_reading_at_djangos_limit(settings):
    """Read from the stream (as daphne's requests are), DRF would take any size; the parser does not."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    stream = io.BytesIO(json.dumps({"source": "#" * 10_000_000}).encode())
    with pytest.raises(ParseError, match="larger than 1000 bytes"):
        JSONParser().parse(stream)
    assert stream.tell() == 1001


def test_an_unexpected_exception_is_a_500_with_the_error_body_not_its_text(member, project, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("disk full at /srv/secret/place")

    monkeypatch.setattr(templates, "template_create", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(member)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post(
            TEMPLATES, {"name": "x", "project": project.pk, "source": "tiers: [{name: a, appliance: b}]"}, format="json"
        )
    body = _error_body(response, 500)
    assert body["code"] == "server_error"
    assert "secret" not in response.content.decode()
    # Operators still get the whole story, with the traceback, in the log.
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info is not None
    assert "secret" in str(record.exc_info[1])


def test_an_unexpected_exception_still_fails_a_test_that_did_not_expect_it(api, member, project, monkeypatch):
    """Django's test client re-raises what a view raised; the API's 500 body must not hide that."""

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(templates, "template_create", broken)
    with pytest.raises(RuntimeError, match="boom"):
        api(member).post(
            TEMPLATES, {"name": "x", "project": project.pk, "source": "tiers: [{name: a, appliance: b}]"}, format="json"
        )

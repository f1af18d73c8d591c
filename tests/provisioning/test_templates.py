"""Template documents: every mistake is named by its path; good documents give the start order."""

from __future__ import annotations

import json

import pytest

from portal import errors
from provisioning.templates import Dependency, parse_template

THREE_TIERS = """
description: HTTPD, Tomcat and PostgreSQL
tiers:
  - name: db
    appliance: demo-db
    settings: {record: hello, replicas: 2, fast: true}
  - name: app
    appliance: demo-app
    version: "1.0"
    vcpus: 2
    memory_mib: 256
    depends_on: [db]
  - name: web
    appliance: demo-web
    flavor: small
    count: 2
    depends_on: [{tier: app, wait_for_port: true}]
    publish: [80, 443]
"""


def _fields(source: str) -> dict[str, list[str]]:
    with pytest.raises(errors.Invalid) as refused:
        parse_template(source)
    return refused.value.fields


@pytest.mark.parametrize(
    ("source", "path", "message"),
    [
        ("tiers: [", "source", "not valid YAML (line 1, column 9)"),
        ('{"tiers": [}', "source", "not valid JSON"),
        ("- just a list", "source", "a template is a mapping"),
        ("tiers: []", "tiers", "at least one tier"),
        ("tiers: [{name: web}]", "tiers[0].appliance", "an appliance identifier"),
        ("tiers: [{name: Web, appliance: a}]", "tiers[0].name", "1-15 lowercase letters"),
        ("tiers: [{name: web, appliance: a, colour: red}]", "tiers[0].colour", "unknown key"),
        ("tiers: [{name: web, appliance: a, count: 0}]", "tiers[0].count", "a whole number from 1 to 10"),
        ("tiers: [{name: web, appliance: a, count: true}]", "tiers[0].count", "a whole number"),
        ("tiers: [{name: web, appliance: a, vcpus: 2.5}]", "tiers[0].vcpus", "a whole number from 1 to 64"),
        ("tiers: [{name: web, appliance: a, flavor: small, vcpus: 2}]", "tiers[0].flavor", "not both"),
        ("tiers: [{name: web, appliance: a, publish: [80, 80]}]", "tiers[0].publish[1]", "listed twice"),
        ("tiers: [{name: web, appliance: a, publish: [70000]}]", "tiers[0].publish[0]", "from 1 to 65535"),
        ("tiers: [{name: web, appliance: a, settings: {Bad: 1}}]", "tiers[0].settings.Bad", "names are lowercase"),
        ("tiers: [{name: web, appliance: a, settings: {x: [1]}}]", "tiers[0].settings.x", "a value is text"),
        ("tiers: [{name: web, appliance: a, depends_on: [db]}]", "tiers[0].depends_on[0]", "no tier is called 'db'"),
        ("tiers: [{name: web, appliance: a, depends_on: [web]}]", "tiers[0].depends_on[0]", "depend on itself"),
        ("tiers: [{name: a, appliance: x}, {name: a, appliance: y}]", "tiers[1].name", "already called 'a'"),
        ("tiers: [{name: web, appliance: a}]\nextra: 1", "extra", "unknown key"),
    ],
)
def test_each_mistake_is_named_by_its_path(source, path, message):
    fields = _fields(source)
    assert path in fields, fields
    assert any(message in text for text in fields[path]), fields[path]


def test_a_circle_of_dependencies_is_shown():
    fields = _fields(
        "tiers: [{name: a, appliance: x, depends_on: [c]}, {name: b, appliance: x, depends_on: [a]},"
        " {name: c, appliance: x, depends_on: [b]}]"
    )
    assert fields == {"tiers": ["the dependencies go round in a circle: a -> c -> b -> a"]}


def test_every_problem_is_reported_at_once():
    with pytest.raises(errors.Invalid, match=r"^tiers\[0\]\.name: .* \(and 2 more problems\)$") as refused:
        parse_template("tiers: [{name: '', appliance: '', count: 99}]")
    assert set(refused.value.fields) == {"tiers[0].name", "tiers[0].appliance", "tiers[0].count"}


def test_an_oversized_document_is_refused():
    with pytest.raises(errors.Invalid, match="at most 64 KiB"):
        parse_template("#" * (65 * 1024))


def test_yaml_that_builds_objects_is_not_executed():
    fields = _fields("!!python/object/apply:os.system ['true']")
    assert "source" in fields


def test_three_tiers_parse_with_their_start_order():
    document = parse_template(THREE_TIERS)
    assert [[tier.name for tier in layer] for layer in document.start_order()] == [["db"], ["app"], ["web"]]
    web = document.tier("web")
    assert (web.flavor, web.count, web.publish) == ("small", 2, (80, 443))
    assert web.depends_on == (Dependency(tier="app", wait_for_port=True),)
    assert document.tier("db").settings == {"record": "hello", "replicas": "2", "fast": "true"}
    app = document.tier("app")
    assert (app.version, app.vcpus, app.memory_mib, app.disk_gib) == ("1.0", 2, 256, None)


def test_json_and_yaml_give_the_same_document_and_it_survives_storage():
    from_yaml = parse_template(THREE_TIERS)
    from_json = parse_template(json.dumps(from_yaml.as_json()))
    assert from_json == from_yaml


def test_independent_tiers_share_a_layer():
    document = parse_template(
        "tiers: [{name: a, appliance: x}, {name: b, appliance: x}, {name: c, appliance: x, depends_on: [a, b]}]"
    )
    assert [[tier.name for tier in layer] for layer in document.start_order()] == [["a", "b"], ["c"]]

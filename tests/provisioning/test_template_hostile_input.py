"""Template text written to hurt the parser: every one is refused as bad input, naming where.

A template is the one document a tenant writes that the portal parses; whatever it holds must end
in ``errors.Invalid`` (a 400 with the error body), never in an exception the server did not expect,
and never in a value the database or the JSON renderer cannot take.
"""

from __future__ import annotations

import json

import pytest

from portal import errors
from provisioning.template_limits import MAX_DEPTH
from provisioning.templates import parse_template, validate_document

TIER = "tiers: [{name: web, appliance: a%s}]"


def _refused(source: str) -> errors.Invalid:
    with pytest.raises(errors.Invalid) as refused:
        parse_template(source)
    body = refused.value.as_body()
    # What the API answers must be writable as UTF-8 JSON (a lone surrogate is not), and small.
    encoded = json.dumps(body, ensure_ascii=False).encode()
    assert len(encoded) < 20_000, encoded[:500]
    return refused.value


def _fields(source: str) -> dict[str, list[str]]:
    return _refused(source).fields


def _short(value: object) -> str:
    """A test id that fits on a line."""
    text = str(value)
    return text if len(text) < 40 else f"{text[:30]}...({len(text)} chars)"


def _in(fields: dict[str, list[str]], path: str, words: str) -> None:
    assert path in fields, fields
    assert any(words in message for message in fields[path]), fields[path]


@pytest.mark.parametrize(
    ("source", "path"),
    ids=_short,
    argvalues=[
        ("tiers: [{name: web, appliance: a}]\n1: x\nnull: y", "1"),
        ("tiers: [{name: web, appliance: a}]\ntrue: x\n2020-01-01: y", "2020-01-01"),
        ("tiers: [{name: web, appliance: a, 1: x, b: y}]", "tiers[0].1"),
        ("tiers: [{name: web, appliance: a, settings: {1: x, b: y}}]", "tiers[0].settings.1"),
        ("tiers: [{name: web, appliance: a, depends_on: [{tier: x, 3.5: y}]}]", "tiers[0].depends_on[0].3.5"),
    ],
)
def test_keys_that_are_not_text_are_named_not_sorted(source, path):
    fields = _fields(source)
    assert path in fields, fields


@pytest.mark.parametrize(
    "source",
    ids=_short,
    argvalues=[
        "[" * 5000 + "]" * 5000,
        "a: " + "{a: " * 3000 + "1" + "}" * 3000,
        '{"tiers": ' + "[" * 5000 + "]" * 5000 + "}",
        "tiers:\n" + "- " * 3000 + "x",
    ],
)
def test_deep_nesting_is_refused_without_recursing_to_the_limit(source):
    fields = _fields(source)
    assert any(f"nested more than {MAX_DEPTH} levels" in m for messages in fields.values() for m in messages), fields


def test_nesting_under_the_interpreters_limit_is_named_by_its_path():
    fields = _fields('{"tiers": [{"name": "web", "appliance": "a", "settings": {"x": ' + "[" * 30 + "]" * 30 + "}}]}")
    _in(fields, "tiers[0].settings.x" + "[0]" * (MAX_DEPTH - 4), f"nested more than {MAX_DEPTH} levels")


@pytest.mark.parametrize(
    ("source", "path"),
    ids=_short,
    argvalues=[
        (TIER % (", count: " + "9" * 5000), "source"),
        ('{"tiers": [{"name": "web", "appliance": "a", "count": ' + "9" * 5000 + "}]}", "source"),
        (TIER % (", settings: {x: 0x" + "f" * 5000 + "}"), "source"),
        (TIER % (", settings: {x: 0x" + "f" * 40 + "}"), "tiers[0].settings.x"),
        (TIER % (", version: 0b" + "1" * 70), "tiers[0].version"),
        (TIER % (", count: 0x" + "f" * 40), "tiers[0].count"),
        ("tiers: [{name: web, appliance: a, ? 0x" + "f" * 40 + "\n : 1}]", "tiers[0]"),
        ('{"tiers": [{"name": "web", "appliance": "a", "settings": {"x": 123456789012345678901234}}]}', "source"),
    ],
)
def test_huge_numbers_are_refused_before_they_are_turned_into_text(source, path):
    fields = _fields(source)
    _in(fields, path, "digits")


@pytest.mark.parametrize(
    ("source", "path"),
    ids=_short,
    argvalues=[
        (TIER % ', settings: {x: "a\\0b"}', "tiers[0].settings.x"),
        (TIER % ', settings: {x: "\\ud800"}', "tiers[0].settings.x"),
        ('{"tiers": [{"name": "web", "appliance": "a"}], "description": "\\u0000"}', "description"),
        ('{"tiers": [{"name": "web", "appliance": "a", "\\udfff": 1}]}', "tiers[0]"),
        (TIER % ', depends_on: ["\\ud800"]', "tiers[0].depends_on[0]"),
        (TIER % ', version: "1\\0"', "tiers[0].version"),
    ],
)
def test_text_the_database_or_a_json_answer_cannot_hold_is_refused(source, path):
    fields = _fields(source)
    _in(fields, path, "NUL characters or unpaired surrogates")


def test_a_source_with_an_unpaired_surrogate_of_its_own_is_refused():
    _in(_fields("tiers: [{name: web, appliance: a}] # \ud800"), "source", "unpaired surrogate")


@pytest.mark.parametrize(
    ("source", "path", "words"),
    ids=_short,
    argvalues=[
        (TIER % (", depends_on: [" + ",".join(["b"] * 30000) + "]"), "tiers[0].depends_on", "at most 9"),
        (TIER % (", depends_on: [b, b]"), "tiers[0].depends_on[1]", "listed twice"),
        (TIER % (", settings: {" + ", ".join(f"k{i}: 1" for i in range(100)) + "}"), "tiers[0].settings", "at most"),
        (TIER % (", publish: [" + ", ".join(str(p) for p in range(1, 30)) + "]"), "tiers[0].publish", "at most 8"),
        ("tiers: [" + ", ".join(f"{{name: t{i}, appliance: a}}" for i in range(40)) + "]", "tiers", "at most 10"),
        (TIER % (", " + ", ".join(f"x{i}: 1" for i in range(3000))), "tiers[0].x0", "unknown key"),
    ],
)
def test_every_list_and_mapping_has_a_limit(source, path, words):
    _in(_fields(source), path, words)


def test_a_flood_of_mistakes_gives_a_bounded_answer():
    refused = _refused(TIER % (", " + ", ".join(f"x{i}: 1" for i in range(3000))))
    assert len(refused.fields) <= 100
    assert "more problems" in refused.detail


@pytest.mark.parametrize(
    "source",
    ids=_short,
    argvalues=[
        # Merge keys copy mappings into each other: three lines of them can ask for a billion entries.
        "a: &a {"
        + ", ".join(f"k{i}: 1" for i in range(300))
        + "}\nb: &b {<<: ["
        + ", ".join(["*a"] * 300)
        + "]}\nc: {<<: ["
        + ", ".join(["*b"] * 300)
        + "]}\ntiers: []",
        "a: &a {<<: *a}\ntiers: []",  # a mapping merged into itself
    ],
)
def test_yaml_merge_keys_are_refused(source):
    _in(_fields(source), "source", "merge keys")


@pytest.mark.parametrize(
    "source",
    ids=_short,
    argvalues=[
        "tiers: &t [*t]",
        TIER % ", settings: &s {x: *s}",
        TIER % ", depends_on: &d [*d]",
        "description: 2020-99-99\ntiers: [{name: web, appliance: a}]",
        "description: !!int abc\ntiers: [{name: web, appliance: a}]",
        "description: 2001-12-14t21:59:43.10+99:00\ntiers: [{name: web, appliance: a}]",
        "description: !!binary '####'\ntiers: [{name: web, appliance: a}]",
        "tiers: [{name: web, appliance: a}]\n---\ntiers: []",
    ],
)
def test_odd_yaml_is_refused_cleanly(source):
    _refused(source)


def test_anchors_and_aliases_that_only_repeat_a_value_still_work():
    document = parse_template(
        "tiers: [{name: db, appliance: a, settings: &common {zone: x}}, {name: web, appliance: a, settings: *common}]"
    )
    assert [tier.settings for tier in document.tiers] == [{"zone": "x"}, {"zone": "x"}]


def test_documents_from_json_bodies_are_checked_the_same_way():
    deep: object = "x"
    for _ in range(900):  # parses as JSON, but would make json.dumps(indent=2) recurse past the limit
        deep = [deep]
    with pytest.raises(errors.Invalid) as refused:
        validate_document({"tiers": [{"name": "web", "appliance": "a", "settings": {"x": deep}}]})
    assert any("nested more than" in m for messages in refused.value.fields.values() for m in messages)
    with pytest.raises(errors.Invalid, match="digits"):
        validate_document({"tiers": [{"name": "web", "appliance": "a", "settings": {"x": 10**5000}}]})


@pytest.mark.parametrize("value", ["1.0e+300", ".inf", "-.inf", ".nan", "-9.3e+18"])
def test_setting_numbers_stay_within_one_range(value):
    _in(_fields(TIER % f", settings: {{x: {value}}}"), "tiers[0].settings.x", "a number from")

"""Fuzzing the template parser: whatever a tenant writes, the answer is a template or ``errors.Invalid``.

Hypothesis writes the text (random characters, YAML and JSON pieces glued together, documents
built from every kind of value YAML can make, templates that are nearly right) and checks that
nothing else ever leaves the parser: no ``TypeError`` from keys that cannot be sorted, no
``RecursionError``, no ``ValueError`` from numbers too long to print. A refusal must be writable
as the API's UTF-8 JSON error body, and an accepted template must be storable (no NUL, no
unpaired surrogate) and read back the same.

The examples are derandomized: every run tries the same ones, so a failure replays on any machine.
"""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import errors
from provisioning.template_limits import MAX_SOURCE_BYTES
from provisioning.templates import TemplateDocument, parse_template, validate_document

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every character, unpaired surrogates and NUL included (Hypothesis leaves surrogates out by default).
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
PIECES = [
    "[", "]", "{", "}", ":", ": ", ",", "- ", "\n", "\n  ", "  ", '"', "'", "&a ", "*a", "<<: ", "? ",
    "!!int ", "!!float ", "!!binary ", "!!set ", "!!omap ", "!!pairs ", "!!timestamp ", "!!python/name:os.system",
    "0x", "0b", "0o", "9" * 25, "1:20", "-", ".inf", ".nan", "null", "true", "~",
    "2020-99-99", "2001-12-14t21:59:43+99:00",
    "\\0", "\\ud800", "\\u0000", "\\x00", "\x00", "\ud800", "#",
    "tiers", "name", "appliance", "version", "flavor", "count", "vcpus", "depends_on", "publish", "settings",
    "tier", "wait_for_port", "description", "web", "db", "demo-web", "80",
]  # fmt: skip
KEYS = ["name", "appliance", "version", "flavor", "vcpus", "memory_mib", "disk_gib", "count", "depends_on", "publish"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(ANY_CHARACTER, max_size=30),
    st.dates(),
    st.binary(max_size=10),
)
keys = st.one_of(st.text(ANY_CHARACTER, max_size=10), st.sampled_from(KEYS), st.integers(), st.none(), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40,
)
tier_names = st.sampled_from(["web", "app", "db", "Web", "", "x" * 20]) | st.text(ANY_CHARACTER, max_size=5)
dependency = tier_names | st.fixed_dictionaries({"tier": tier_names}, optional={"wait_for_port": values})
nearly_right_tier = st.fixed_dictionaries(
    {"name": tier_names, "appliance": st.sampled_from(["demo-web", "a"]) | values},
    optional={
        "version": st.sampled_from(["1.0", 1.0, 2]) | values,
        "flavor": st.sampled_from(["small"]) | values,
        "vcpus": st.integers(-2, 70) | values,
        "count": st.integers(-2, 12) | values,
        "depends_on": st.lists(dependency, max_size=12) | values,
        "publish": st.lists(st.integers(-1, 70000), max_size=10) | values,
        "settings": st.dictionaries(st.text(max_size=5) | keys, scalars | values, max_size=6) | values,
        "other": values,
    },
)
nearly_right = st.fixed_dictionaries(
    {"tiers": st.lists(nearly_right_tier, max_size=4) | values},
    optional={"description": st.text(ANY_CHARACTER, max_size=20) | values},
)


def _check(outcome: TemplateDocument | errors.Invalid) -> None:
    """What the API and the pages need of either outcome."""
    if isinstance(outcome, errors.Invalid):
        body = json.dumps(outcome.as_body(), ensure_ascii=False).encode()  # the API's renderer writes UTF-8
        assert outcome.fields, body[:300]
        assert len(body) < 64 * 1024
        return
    stored = json.dumps(outcome.as_json(), ensure_ascii=False)
    stored.encode()  # no unpaired surrogate
    assert "\\u0000" not in stored  # PostgreSQL's jsonb refuses NUL
    assert TemplateDocument.from_json(json.loads(stored)) == outcome


def _outcome_of_text(source: str) -> TemplateDocument | errors.Invalid:
    try:
        return parse_template(source)
    except errors.Invalid as refused:
        return refused


def _outcome_of_data(data: object) -> TemplateDocument | errors.Invalid:
    try:
        return validate_document(data)
    except errors.Invalid as refused:
        return refused


@FUZZ
@given(st.text(ANY_CHARACTER, max_size=300))
def test_any_text(source):
    _check(_outcome_of_text(source))


@FUZZ
@given(st.lists(st.sampled_from(PIECES) | st.text(ANY_CHARACTER, max_size=3), max_size=80).map("".join))
def test_yaml_and_json_pieces(source):
    _check(_outcome_of_text(source))


@FUZZ
@given(st.one_of(values, nearly_right))
def test_any_document_as_data_yaml_and_json(data):
    _check(_outcome_of_data(data))
    for write in (yaml.safe_dump, lambda data: json.dumps(data, default=str)):
        try:
            text = write(data)
        except (TypeError, ValueError, yaml.YAMLError):  # keys JSON cannot write, numbers too long to print
            continue
        _check(_outcome_of_text(text))


# Each example parses up to 64 KiB (a tenth of a second): fewer of them.
@settings(FUZZ, max_examples=40)
@given(st.sampled_from(["[", "{", "[{", "- "]), st.integers(1, 60_000))
def test_nesting_of_any_depth(opening, depth):
    source = opening * (min(depth, MAX_SOURCE_BYTES) // len(opening))
    _check(_outcome_of_text(source))
    _check(_outcome_of_text(f"tiers: {source}"))


def test_nearly_right_documents_are_sometimes_right():
    """The strategy reaches the end of validation, so the fuzzing covers the checks after the first."""
    accepted = []

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(nearly_right)
    def collect(data):
        outcome = _outcome_of_data(data)
        if isinstance(outcome, TemplateDocument):
            accepted.append(outcome)

    collect()
    assert accepted

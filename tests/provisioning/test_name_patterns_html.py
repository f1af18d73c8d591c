"""Every ``pattern`` a page gives an input compiles as browsers compile it (the ``v`` flag), and the
name rules' patterns accept in the browser exactly what the server accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from catalog.models import ApplianceVersion
from provisioning.forms import LaunchForm
from provisioning.name_rules import SNAPSHOT_NAME, STACK_NAME, TEMPLATE_NAME, TIER_NAME, html_pattern

RULES = [STACK_NAME, TEMPLATE_NAME, TIER_NAME, SNAPSHOT_NAME]
SAMPLES = ["a", "shop", "shop-2", "-dash", "dash-", "UPPER", "x_y", "bad name", "a" * 15, "a" * 16, "a" * 40, "a" * 41]
SAMPLES += ["a" * 63, "a" * 64, "9lives", "a--b", "ünï", ""]
TEMPLATES = Path(settings.BASE_DIR) / "templates"
# A literal pattern attribute in a template (not one Django fills in).
ATTRIBUTE = re.compile(r'\bpattern="((?:(?!\{\{|\{%)[^"])*)"')

# What Chromium does with an input's pattern: anchored, compiled with the v flag.
NODE = r"""
const items = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = items.map(({pattern, samples}) => {
  try {
    const re = new RegExp(`^(?:${pattern})$`, "v");
    return {ok: true, matches: samples.map((s) => re.test(s))};
  } catch (error) {
    return {ok: false, error: String(error)};
  }
});
process.stdout.write(JSON.stringify(out));
"""


def _in_node(items: list[dict]) -> list[dict]:
    node = shutil.which("node")
    assert node, "node is needed (it also runs the browser tests' axe-core install)"
    done = subprocess.run([node, "-e", NODE], input=json.dumps(items), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_old_unescaped_pattern_is_what_browsers_refuse():
    # The check itself can fail: the pattern the dialog used to carry does not compile with the v flag.
    (answer,) = _in_node([{"pattern": "[a-z0-9]([a-z0-9-]*[a-z0-9])?", "samples": []}])
    assert answer["ok"] is False


@pytest.mark.parametrize(
    ("written", "escaped"),
    [
        ("[a-z0-9-]", r"[a-z0-9\-]"),
        ("[-a]", r"[\-a]"),
        ("[^-a]", r"[^\-a]"),
        (r"[a\-b]", r"[a\-b]"),
        ("a-b[x-y]", "a-b[x-y]"),
    ],
)
def test_a_literal_dash_in_a_class_is_escaped_and_ranges_stay(written, escaped):
    assert html_pattern(written) == escaped


def test_each_name_rule_matches_in_the_browser_what_the_server_accepts():
    answers = _in_node([{"pattern": rule.html_pattern, "samples": SAMPLES} for rule in RULES])
    for rule, answer in zip(RULES, answers, strict=True):
        assert answer["ok"], (rule.html_pattern, answer)
        server = [bool(rule.pattern.fullmatch(sample)) for sample in SAMPLES]
        assert answer["matches"] == server, rule.html_pattern


def test_the_launch_forms_name_field_carries_the_rules_pattern(member):
    widget = LaunchForm(user=member, versions=ApplianceVersion.objects.none()).fields["name"].widget
    assert widget.attrs["pattern"] == STACK_NAME.html_pattern
    assert widget.attrs["data-invalid-message"].startswith("Name must be 1-40 lowercase letters")


def test_every_pattern_written_in_a_template_compiles_in_the_browser():
    found = {
        (path.relative_to(TEMPLATES).as_posix(), pattern)
        for path in TEMPLATES.rglob("*.html")
        for pattern in ATTRIBUTE.findall(path.read_text())
    }
    assert any(name.startswith("transfers/") for name, _pattern in found)
    answers = _in_node([{"pattern": pattern.replace("&amp;", "&"), "samples": []} for _name, pattern in sorted(found)])
    refused = [(item, answer) for item, answer in zip(sorted(found), answers, strict=True) if not answer["ok"]]
    assert refused == []

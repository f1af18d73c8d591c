"""Stack templates: documents (YAML or JSON) listing a stack's tiers, parsed and validated.

Pure functions, no database: ``parse_template`` turns the text a person wrote into a
``TemplateDocument`` or raises ``errors.Invalid`` whose ``fields`` name every problem by its
path (``tiers[1].depends_on[0]``), whatever the text holds: ``template_source`` reads it safely,
``template_limits`` says how large each part may be. Appliances and flavors are looked up when a
stack is launched (``provisioning.services.plans``), because the catalog changes after a template
is saved.

    description: HTTPD, Tomcat and PostgreSQL
    tiers:
      - name: db
        appliance: demo-db          # an appliance identifier; "version" is optional (newest)
        flavor: small               # or vcpus / memory_mib / disk_gib (never below the appliance's minimum)
        settings: {record: hello}   # handed to the guest on its config drive
      - name: app
        appliance: demo-app
        depends_on: [db]            # started after db; {tier: db, wait_for_port: true} also waits for its port
      - name: web
        appliance: demo-web
        count: 1
        depends_on: [{tier: app, wait_for_port: true}]
        publish: [80]               # guest ports reachable from outside; nothing else is
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from portal import errors
from provisioning.template_limits import (
    LARGEST,
    MAX_COUNT,
    MAX_DEPENDENCIES,
    MAX_DESCRIPTION_CHARS,
    MAX_PORTS,
    MAX_PROBLEMS,
    MAX_SETTING_CHARS,
    MAX_SETTINGS,
    MAX_TIERS,
    MAX_VERSION_CHARS,
    shape_problems,
)
from provisioning.template_source import load_source

TIER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}$")
SETTING_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
APPLIANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TIER_KEYS = {
    "name",
    "appliance",
    "version",
    "flavor",
    "vcpus",
    "memory_mib",
    "disk_gib",
    "count",
    "depends_on",
    "publish",
    "settings",
}


@dataclass(frozen=True)
class Dependency:
    tier: str
    wait_for_port: bool = False


@dataclass(frozen=True)
class Tier:
    name: str
    appliance: str
    version: str | None = None
    flavor: str | None = None
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gib: int | None = None
    count: int = 1
    depends_on: tuple[Dependency, ...] = ()
    publish: tuple[int, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateDocument:
    tiers: tuple[Tier, ...]
    description: str = ""

    def tier(self, name: str) -> Tier:
        return next(tier for tier in self.tiers if tier.name == name)

    def start_order(self) -> list[list[Tier]]:
        """Tiers in layers: each layer depends only on earlier ones and may start in parallel."""
        placed: set[str] = set()
        layers: list[list[Tier]] = []
        remaining = list(self.tiers)
        while remaining:
            layer = [t for t in remaining if all(d.tier in placed for d in t.depends_on)]
            layers.append(layer)
            placed |= {t.name for t in layer}
            remaining = [t for t in remaining if t.name not in placed]
        return layers

    def as_json(self) -> dict[str, Any]:
        """Plain JSON data (lists, not tuples), as stored on templates and stacks."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TemplateDocument:
        """Back from ``as_json`` (a stored, already validated document)."""
        return validate_document(_without_repeated_dependencies(data))


def _without_repeated_dependencies(data: dict[str, Any]) -> dict[str, Any]:
    """Documents stored before a repeated dependency was refused may list one many times; once is the
    same dependency (waiting for its port if any entry did), so they still read."""
    tiers = data.get("tiers")
    if not isinstance(tiers, list) or not all(isinstance(t, dict) for t in tiers):
        return data
    if not all(isinstance(tier.get("depends_on"), list) for tier in tiers):
        return data
    cleaned = []
    for tier in tiers:
        merged: dict[str, bool] = {}
        for dependency in tier["depends_on"]:
            if not isinstance(dependency, dict) or not isinstance(dependency.get("tier"), str):
                return data  # not a stored document: validation says what is wrong
            name = dependency["tier"]
            merged[name] = merged.get(name, False) or dependency.get("wait_for_port") is True
        depends_on = [{"tier": name, "wait_for_port": wait} for name, wait in merged.items()]
        cleaned.append({**tier, "depends_on": depends_on})
    return {**data, "tiers": cleaned}


class DocumentInvalid(errors.Invalid):
    """A template document's problems by path (an ordinary ``invalid`` answer), and how many more
    there were past the ``MAX_PROBLEMS`` paths named, so a page can say that it shows only some."""

    def __init__(self, detail: str, *, fields: dict[str, list[str]], unnamed: int) -> None:
        super().__init__(detail, fields=fields)
        self.unnamed = unnamed


class _Problems:
    """Collects every problem with its path, so one answer lists them all (the first ``MAX_PROBLEMS``
    paths by name, the rest counted: a flood of mistakes must not make a flood of an answer)."""

    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}
        self.unnamed = 0

    def add(self, path: str, message: str) -> None:
        if path in self.by_path or len(self.by_path) < MAX_PROBLEMS:
            self.by_path.setdefault(path, []).append(message)
        else:
            self.unnamed += 1

    def raise_if_any(self) -> None:
        if self.by_path:
            path, messages = next(iter(self.by_path.items()))
            more = len(self.by_path) - 1 + self.unnamed
            suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
            raise DocumentInvalid(f"{path}: {messages[0]}{suffix}", fields=self.by_path, unnamed=self.unnamed)


def parse_template(source: str) -> TemplateDocument:
    """Parse a template written as YAML or JSON."""
    return validate_document(load_source(source))


def validate_document(data: object, *, versions_as_text: bool = False) -> TemplateDocument:
    """The template ``data`` describes (parsed text, or a JSON body), or ``errors.Invalid`` naming every problem.

    YAML reads ``version: 1.0`` as a number, so written text may give a version as one. A JSON body
    says what it means (``versions_as_text``): there a number is refused, as 1.10 would read as "1.1".
    """
    problems = _Problems()
    # First what no template holds and what would trip the checks below (keys that are not text...).
    for path, message in shape_problems(data):
        problems.add(path, message)
    problems.raise_if_any()
    if not isinstance(data, dict):
        problems.add("source", "a template is a mapping with a 'tiers' list")
        problems.raise_if_any()
    assert isinstance(data, dict)
    for key in sorted(set(data) - {"tiers", "description"}):
        problems.add(key, "unknown key (a template has 'description' and 'tiers')")
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
        problems.add("description", f"must be text of at most {MAX_DESCRIPTION_CHARS} characters")
        description = ""
    raw_tiers = data.get("tiers")
    tiers: list[Tier] = []
    if not isinstance(raw_tiers, list) or not raw_tiers:
        problems.add("tiers", "must be a list of at least one tier")
    elif len(raw_tiers) > MAX_TIERS:
        problems.add("tiers", f"at most {MAX_TIERS} tiers")
    else:
        for index, raw in enumerate(raw_tiers):
            tier = _tier(raw, f"tiers[{index}]", problems, versions_as_text=versions_as_text)
            if tier is not None:
                tiers.append(tier)
    _check_names_and_dependencies(tiers, problems)
    problems.raise_if_any()
    return TemplateDocument(tiers=tuple(tiers), description=description)


def _tier(raw: object, path: str, problems: _Problems, *, versions_as_text: bool) -> Tier | None:
    if not isinstance(raw, dict):
        problems.add(path, "a tier is a mapping with at least 'name' and 'appliance'")
        return None
    for key in sorted(set(raw) - _TIER_KEYS):
        problems.add(f"{path}.{key}", "unknown key")
    name = raw.get("name")
    if not isinstance(name, str) or not TIER_NAME.fullmatch(name):
        problems.add(f"{path}.name", "1-15 lowercase letters, digits or '-', starting with a letter")
        name = ""
    appliance = raw.get("appliance")
    if not isinstance(appliance, str) or not APPLIANCE_ID.fullmatch(appliance):
        problems.add(f"{path}.appliance", "an appliance identifier from the catalog, such as 'demo-web'")
        appliance = ""
    version = raw.get("version")
    if version is not None:
        numbers = () if versions_as_text else (int, float)
        version = str(version) if isinstance(version, (str, *numbers)) and not isinstance(version, bool) else None
        if version is None or not version or len(version) > MAX_VERSION_CHARS:
            problems.add(f"{path}.version", "a version such as '1.0' (leave it out for the newest)")
            version = None
    flavor = raw.get("flavor")
    if flavor is not None and (not isinstance(flavor, str) or not TIER_NAME.fullmatch(flavor)):
        problems.add(f"{path}.flavor", "the name of a flavor")
        flavor = None
    sizes = {key: _int(raw, key, path, problems, low=1, high=high) for key, high in SIZE_LIMITS.items()}
    if flavor is not None and any(value is not None for value in sizes.values()):
        problems.add(f"{path}.flavor", "give either a flavor or vcpus/memory_mib/disk_gib, not both")
    count = _int(raw, "count", path, problems, low=1, high=MAX_COUNT)
    return Tier(
        name=name,
        appliance=appliance,
        version=version,
        flavor=flavor,
        vcpus=sizes["vcpus"],
        memory_mib=sizes["memory_mib"],
        disk_gib=sizes["disk_gib"],
        count=count if count is not None else 1,
        depends_on=_dependencies(raw.get("depends_on", []), f"{path}.depends_on", problems),
        publish=_ports(raw.get("publish", []), f"{path}.publish", problems),
        settings=_settings(raw.get("settings", {}), f"{path}.settings", problems),
    )


SIZE_LIMITS = {"vcpus": 64, "memory_mib": 256 * 1024, "disk_gib": 2048}


def _int(raw: dict[str, Any], key: str, path: str, problems: _Problems, *, low: int, high: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.add(f"{path}.{key}", f"a whole number from {low} to {high}")
        return None
    return value


def _dependencies(raw: object, path: str, problems: _Problems) -> tuple[Dependency, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_DEPENDENCIES:
        problems.add(path, f"a list of at most {MAX_DEPENDENCIES} tier names, or of {{tier, wait_for_port}}")
        return ()
    found: list[Dependency] = []
    for index, item in enumerate(raw):
        name = item.get("tier") if isinstance(item, dict) and set(item) <= {"tier", "wait_for_port"} else item
        if not isinstance(name, str) or not TIER_NAME.fullmatch(name):
            problems.add(f"{path}[{index}]", "a tier name, or {tier: <name>, wait_for_port: true}")
            continue
        if any(dependency.tier == name for dependency in found):
            problems.add(f"{path}[{index}]", f"tier '{name}' is listed twice")
            continue
        wait = item.get("wait_for_port", False) if isinstance(item, dict) else False
        if not isinstance(wait, bool):
            problems.add(f"{path}[{index}].wait_for_port", "true or false")
            wait = False
        found.append(Dependency(tier=name, wait_for_port=wait))
    return tuple(found)


def _ports(raw: object, path: str, problems: _Problems) -> tuple[int, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_PORTS:
        problems.add(path, f"a list of at most {MAX_PORTS} guest ports")
        return ()
    ports: list[int] = []
    for index, port in enumerate(raw):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            problems.add(f"{path}[{index}]", "a port from 1 to 65535")
        elif port in ports:
            problems.add(f"{path}[{index}]", f"port {port} is listed twice")
        else:
            ports.append(port)
    return tuple(ports)


# What a setting's value may be: each has a short, plain text form for the config drive.
_SETTING_VALUES = (str, int, float, bool, datetime.date)


def _settings(raw: object, path: str, problems: _Problems) -> dict[str, str]:
    if not isinstance(raw, dict) or len(raw) > MAX_SETTINGS:
        problems.add(path, f"a mapping of at most {MAX_SETTINGS} names to values")
        return {}
    settings: dict[str, str] = {}
    for key, value in raw.items():
        if not SETTING_KEY.fullmatch(key):
            problems.add(f"{path}.{key}", "names are lowercase letters, digits and '_', starting with a letter")
        elif not isinstance(value, _SETTING_VALUES):
            problems.add(f"{path}.{key}", "a value is text, a number or true/false")
        elif isinstance(value, int | float) and not isinstance(value, bool) and not -LARGEST <= value <= LARGEST:
            # Floats too, and .nan and .inf, which compare with nothing: one range for every number.
            problems.add(f"{path}.{key}", f"a number from {-LARGEST} to {LARGEST} (quote it to use it as text)")
        elif len(str(value)) > MAX_SETTING_CHARS:
            problems.add(f"{path}.{key}", f"at most {MAX_SETTING_CHARS} characters")
        else:
            settings[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return settings


def _check_names_and_dependencies(tiers: list[Tier], problems: _Problems) -> None:
    names = [tier.name for tier in tiers]
    for index, tier in enumerate(tiers):
        if tier.name and names.index(tier.name) != index:
            problems.add(f"tiers[{index}].name", f"another tier is already called '{tier.name}'")
        for dep_index, dependency in enumerate(tier.depends_on):
            if dependency.tier == tier.name:
                problems.add(f"tiers[{index}].depends_on[{dep_index}]", "a tier cannot depend on itself")
            elif dependency.tier not in names:
                problems.add(f"tiers[{index}].depends_on[{dep_index}]", f"no tier is called '{dependency.tier}'")
    if problems.by_path:
        return
    cycle = _cycle(tiers)
    if cycle:
        problems.add("tiers", f"the dependencies go round in a circle: {' -> '.join(cycle)}")


def _cycle(tiers: list[Tier]) -> list[str]:
    depends = {tier.name: [d.tier for d in tier.depends_on] for tier in tiers}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> list[str]:
        if state.get(name) == "done":
            return []
        if state.get(name) == "open":
            return [*trail[trail.index(name) :], name]
        state[name] = "open"
        for nxt in depends[name]:
            found = visit(nxt, [*trail, name])
            if found:
                return found
        state[name] = "done"
        return []

    for tier in tiers:
        found = visit(tier.name, [])
        if found:
            return found
    return []

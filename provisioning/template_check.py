"""Everything wrong with a template someone is writing, each problem under the field it is about.

The template service refuses a bad template and says why; a person at the editor wants more from
one round trip: every problem at once (a bad name must not hide a broken document), the document's
problems with the line they are on, and what the catalog says about the appliances and flavors the
tiers name, which a launch would otherwise be the first to find. The service still decides; this
only lets the page say everything before it is asked.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q
from yaml.nodes import Node

from catalog.models import Appliance
from portal import errors
from portal.models import Project, Role
from portal.scoping import User, is_operator, role_in
from provisioning.models import Flavor, StackTemplate
from provisioning.template_limits import MAX_TIERS
from provisioning.template_lines import line_of, node_lines, path_lines
from provisioning.template_source import leading_lines, read_source
from provisioning.templates import DocumentInvalid, TemplateDocument, validate_document

# How many identifiers are compared with a mistyped one to suggest the one meant.
_SUGGESTION_POOL = 1000
# Where "and N more problems" sorts: after every line.
_LAST = 10**9


@dataclass
class TemplateCheck:
    """Problems by form field (``name``, ``project``, ``source``), and the document when it reads."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    document: TemplateDocument | None = None

    def add(self, name: str, message: str) -> None:
        self.problems.setdefault(name, []).append(message)


def check_template(
    *, user: User, project: Project | None, name: str | None, source: str, editing: StackTemplate | None = None
) -> TemplateCheck:
    """What stands in the way of saving this template; ``name`` None when the form has refused it already."""
    check = TemplateCheck()
    _check_writer(check, user=user, project=project, creating=editing is None)
    if name:
        _check_name_free(check, project=project, name=name, editing=editing)
    check_document(check, user=user, project=project, source=source)
    return check


def check_document(check: TemplateCheck, *, user: User, project: Project | None, source: str) -> None:
    """The document's problems under ``source``, each with its line, in the order they are written.

    The catalog is asked about every appliance and flavor the tiers name well enough to look up,
    even when other parts of the document are wrong: a mistyped appliance is said with the rest.
    """
    found: list[tuple[int, str]] = []
    named: list[NamedParts] = []
    try:
        data, root = read_source(source)
    except errors.Invalid as exc:  # unreadable: the reader's message says where
        found.extend((0, _sentence(message)) for messages in exc.fields.values() for message in messages)
    else:
        lines = _lines(source, root)
        try:
            check.document = validate_document(data)
            named = [NamedParts(index, tier.appliance, tier.flavor) for index, tier in enumerate(check.document.tiers)]
        except DocumentInvalid as exc:
            for path, messages in exc.fields.items():
                found.extend(_placed(path, message, lines) for message in messages)
            named = _parts_named_well(data, refused=set(exc.fields))
            if exc.unnamed:
                more = f"{exc.unnamed} more problem{'s' if exc.unnamed > 1 else ''}"
                found.append((_LAST, f"… and {more}: fix these first"))
        if named:
            found.extend(_catalog_problems(user=user, project=project, named=named, lines=lines))
    for _line, message in sorted(found, key=lambda pair: pair[0]):
        check.add("source", message)


def _lines(source: str, root: Node | None) -> dict[str, int]:
    """Where each path is written: from the nodes the text was read into, or (JSON) read again as YAML."""
    if root is None:
        return path_lines(source)
    return node_lines(root, first_line=1 + leading_lines(source))


@dataclass(frozen=True)
class NamedParts:
    """What one tier names from the catalog."""

    index: int
    appliance: str | None
    flavor: str | None


def _parts_named_well(data: object, *, refused: set[str]) -> list[NamedParts]:
    """The appliances and flavors of a refused document that are themselves written well."""
    tiers = data.get("tiers") if isinstance(data, dict) else None
    if not isinstance(tiers, list) or len(tiers) > MAX_TIERS:
        return []
    named = []
    for index, tier in enumerate(tiers):
        if not isinstance(tier, dict):
            continue
        appliance, flavor = tier.get("appliance"), tier.get("flavor")
        path = f"tiers[{index}]"
        good_appliance = isinstance(appliance, str) and f"{path}.appliance" not in refused
        good_flavor = isinstance(flavor, str) and f"{path}.flavor" not in refused
        named.append(NamedParts(index, appliance if good_appliance else None, flavor if good_flavor else None))
    return named


def _placed(path: str, message: str, lines: dict[str, int]) -> tuple[int, str]:
    """A document problem as its reader looks for it: by line first, then by the path written there."""
    if path == "source":
        return 0, _sentence(message)
    line = line_of(path, lines)
    if line is None:
        return 0, f"{path}: {message}"
    return line, f"Line {line}, {path}: {message}"


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def _check_writer(check: TemplateCheck, *, user: User, project: Project | None, creating: bool) -> None:
    if project is None:
        if not is_operator(user):
            advice = "choose one of your projects" if creating else "ask an operator to change this one"
            check.add("project", f"Only operators may write shared templates: {advice}.")
        return
    role = role_in(user, project)
    if role is None or role.rank < Role.MEMBER.rank:
        check.add("project", f"Changing the templates of project {project.name} needs the member role in it.")
        return
    limit = settings.TEMPLATES_PER_PROJECT
    if creating and StackTemplate.objects.filter(project=project).count() >= limit:
        check.add(
            "project", f"Project {project.name} already keeps {limit} templates, the most it may: remove one first."
        )


def _check_name_free(
    check: TemplateCheck, *, project: Project | None, name: str, editing: StackTemplate | None
) -> None:
    taken = StackTemplate.objects.filter(project=project, name=name)
    if editing is not None:
        taken = taken.exclude(pk=editing.pk)
    if taken.exists():
        where = f"Project {project.name}" if project else "The shared catalog"
        check.add("name", f"{where} already has a template called {name}: choose another name.")


def _catalog_problems(
    *, user: User, project: Project | None, named: list[NamedParts], lines: dict[str, int]
) -> list[tuple[int, str]]:
    """Appliances and flavors the tiers name that the template's catalog does not have."""
    owners = Q(feed__project__isnull=True) | Q(feed__project=project) if project else Q(feed__project__isnull=True)
    in_catalog = Appliance.objects.visible_to(user).filter(owners)
    wanted = {part.appliance for part in named if part.appliance}
    known = set(in_catalog.filter(identifier__in=wanted).values_list("identifier", flat=True))
    flavor_owners = Q(project__isnull=True) | Q(project=project) if project else Q(project__isnull=True)
    wanted_flavors = {part.flavor for part in named if part.flavor}
    flavors = set(Flavor.objects.filter(flavor_owners, name__in=wanted_flavors).values_list("name", flat=True))
    catalog = f"the catalog of project {project.name}" if project else "the shared catalog"
    pool: list[str] | None = None
    problems = []
    for part in named:
        if part.appliance and part.appliance not in known:
            if pool is None:
                pool = list(in_catalog.values_list("identifier", flat=True).distinct()[:_SUGGESTION_POOL])
            close = difflib.get_close_matches(part.appliance, pool, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            message = f"there is no appliance {part.appliance} in {catalog}{hint}"
            problems.append(_placed(f"tiers[{part.index}].appliance", message, lines))
        if part.flavor and part.flavor not in flavors:
            owner = f"project {project.name} has no flavor" if project else "there is no shared flavor"
            problems.append(_placed(f"tiers[{part.index}].flavor", f"{owner} {part.flavor}", lines))
    return problems

"""What a capture request must pass before it is accepted: a well-formed prefix and version, and
names (``<prefix>-<tier>`` at that version, the template's) that nothing in the project holds yet."""

from __future__ import annotations

from django.conf import settings

from catalog.models import ApplianceVersion, Feed
from portal import errors
from portal.models import Project
from provisioning.models import Stack, StackTemplate
from provisioning.templates import TemplateDocument
from transfers.capture_naming import (
    APPLIANCE_PREFIX,
    PREFIX_RULE,
    VERSION,
    VERSION_RULE,
    captured_identifier,
    captured_template_name,
)
from transfers.models import FINAL_STATUSES, Capture


def check_format(appliance_prefix: str, version: str) -> None:
    if not APPLIANCE_PREFIX.fullmatch(appliance_prefix):
        raise errors.Invalid.for_field("appliance_prefix", f"the appliance prefix must be {PREFIX_RULE}")
    if not VERSION.fullmatch(version):
        raise errors.Invalid.for_field("version", f"the version must be {VERSION_RULE}")


def check_names_free(*, project: Project, stack: Stack, prefix: str, version: str, tiers: list[str]) -> None:
    """Refuse names the project's own catalog, a capture under way or a template holds already."""
    identifiers = [captured_identifier(prefix, tier) for tier in tiers]
    taken = (
        ApplianceVersion.objects.filter(
            appliance__feed__project=project,
            appliance__feed__format=Feed.Format.LOCAL,
            appliance__identifier__in=identifiers,
            version=version,
        )
        .values_list("appliance__identifier", flat=True)
        .first()
    )
    if taken:
        raise errors.Invalid.for_field(
            "version", f"'{taken}' already has a version '{version}' in this project's catalog: choose another version"
        )
    under_way = Capture.objects.filter(project=project, version=version).exclude(status__in=FINAL_STATUSES)
    for other in under_way.select_related("stack"):
        if other.stack is None:
            continue
        other_tiers = [tier.name for tier in TemplateDocument.from_json(other.stack.document).tiers]
        overlap = set(identifiers) & {captured_identifier(other.appliance_prefix, t) for t in other_tiers}
        if overlap:
            raise errors.Invalid.for_field(
                "version",
                f"another capture under way is making '{sorted(overlap)[0]}' version '{version}': "
                "wait for it, or choose another prefix or version",
            )
    name = captured_template_name(stack.name, version)
    if StackTemplate.objects.filter(project=project, name=name).exists():
        raise errors.Invalid.for_field(
            "version", f"project '{project.name}' already has a template called '{name}': choose another version"
        )
    if StackTemplate.objects.filter(project=project).count() >= settings.TEMPLATES_PER_PROJECT:
        raise errors.QuotaExceeded(
            f"project '{project.name}' may keep at most {settings.TEMPLATES_PER_PROJECT} templates, and a capture "
            "makes one: remove a template first"
        )

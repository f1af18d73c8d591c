"""The template a capture makes: the stack's own document with each tier pointing at its captured
appliance version, written as YAML a person can read and edit."""

from __future__ import annotations

from dataclasses import replace

import yaml

from provisioning.template_limits import MAX_DESCRIPTION_CHARS
from provisioning.templates import TemplateDocument
from transfers.capture_naming import captured_identifier


def captured_document(document: TemplateDocument, *, prefix: str, version: str, stack_name: str) -> TemplateDocument:
    """The stack's own document with each tier pointing at its captured appliance version."""
    tiers = tuple(
        replace(tier, appliance=captured_identifier(prefix, tier.name), version=version) for tier in document.tiers
    )
    note = f"Stack '{stack_name}' as captured (version {version})."
    description = f"{document.description} — {note}" if document.description else note
    return TemplateDocument(tiers=tiers, description=description[:MAX_DESCRIPTION_CHARS])


def template_source(document: TemplateDocument, *, stack_name: str) -> str:
    """The document as YAML a person can read and edit: only what each tier sets."""
    tiers = []
    for tier in document.tiers:
        entry: dict[str, object] = {"name": tier.name, "appliance": tier.appliance, "version": tier.version}
        for key in ("flavor", "vcpus", "memory_mib", "disk_gib"):
            value = getattr(tier, key)
            if value is not None:
                entry[key] = value
        if tier.count != 1:
            entry["count"] = tier.count
        if tier.depends_on:
            entry["depends_on"] = [
                {"tier": d.tier, "wait_for_port": True} if d.wait_for_port else d.tier for d in tier.depends_on
            ]
        if tier.publish:
            entry["publish"] = list(tier.publish)
        if tier.settings:
            entry["settings"] = dict(tier.settings)
        tiers.append(entry)
    body = yaml.safe_dump(
        {"description": document.description, "tiers": tiers}, sort_keys=False, allow_unicode=True, width=100
    )
    return f"# Captured from stack '{stack_name}': each tier starts from its disk as it was then.\n{body}"

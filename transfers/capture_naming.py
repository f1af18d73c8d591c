"""The names a capture gives: its appliances (``<prefix>-<tier>``) and its template, and the rules
the prefix and version the person chooses must follow."""

from __future__ import annotations

import re

from provisioning.name_rules import TEMPLATE_NAME

# An appliance prefix: "<prefix>-<tier>" must be an identifier every feed reader takes (lowercase,
# since feeds are read lowercased, and a template names the appliance exactly).
APPLIANCE_PREFIX = re.compile(r"[a-z0-9]([a-z0-9._-]{0,58}[a-z0-9])?")
PREFIX_RULE = "1-60 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
VERSION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._+-]{0,48}[A-Za-z0-9])?")
VERSION_RULE = "1-50 letters, digits, '.', '_', '+' or '-', starting and ending with a letter or digit"


def captured_identifier(prefix: str, tier: str) -> str:
    return f"{prefix}-{tier}"


def captured_template_name(stack_name: str, version: str) -> str:
    """The template's name: the stack's, then the version (letters and digits kept, the rest '-')."""
    suffix = re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")
    room = TEMPLATE_NAME.max_length - len(stack_name) - 1
    suffix = suffix[:room].strip("-")
    return f"{stack_name}-{suffix}" if suffix else stack_name

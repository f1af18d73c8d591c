"""The template document in the OpenAPI schema, written from the same rules and limits the parser
checks (``provisioning.templates``, ``provisioning.template_limits``), so the two cannot drift apart.

What a schema cannot say stays in the descriptions and is checked by the parser alone: tier names
are unique, each dependency names another tier of the document and the dependencies go round in no
circle, a dependency is listed once, setting names are lowercase, the whole document written as
JSON is at most 64 KiB.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.schema import NO_NUL
from provisioning.template_limits import (
    LARGEST,
    MAX_COUNT,
    MAX_DEPENDENCIES,
    MAX_DESCRIPTION_CHARS,
    MAX_PORTS,
    MAX_SETTING_CHARS,
    MAX_SETTINGS,
    MAX_SOURCE_BYTES,
    MAX_TIERS,
    MAX_VERSION_CHARS,
)
from provisioning.templates import APPLIANCE_ID, SETTING_KEY, SIZE_LIMITS, TIER_NAME


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_TIER_NAME = {"type": "string", "pattern": TIER_NAME.pattern}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_DEPENDENCY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tier"],
    "properties": {
        "tier": _TIER_NAME,
        "wait_for_port": {"type": "boolean", "default": False, "description": "Start only once its port answers"},
    },
}
_SETTING_VALUE = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_SETTING_CHARS, "pattern": NO_NUL},
        {"type": "number", "minimum": -LARGEST, "maximum": LARGEST},
        {"type": "boolean"},
    ]
}
_SIZES = {name: {"type": "integer", "minimum": 1, "maximum": high} for name, high in SIZE_LIMITS.items()}

_TIER_PROPERTIES: dict[str, Any] = {
    "name": {**_TIER_NAME, "description": "Unique within the template"},
    "appliance": {
        "type": "string",
        "pattern": APPLIANCE_ID.pattern,
        "description": "An appliance identifier in the project's catalog",
    },
    # Optional values may be null, meaning "left out": a document read from the API (which writes
    # every key, null where nothing was given) can be sent back as it is.
    "version": _nullable(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_VERSION_CHARS,
            "pattern": NO_NUL,
            "description": "The appliance's version; the newest when left out",
        }
    ),
    "flavor": _nullable({**_TIER_NAME, "description": "A flavor's name; or give vcpus, memory_mib and disk_gib"}),
    **{name: _nullable(size) for name, size in _SIZES.items()},
    "count": _nullable({"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 1}),
    "depends_on": {
        "type": "array",
        "maxItems": MAX_DEPENDENCIES,
        "items": {"anyOf": [_TIER_NAME, _DEPENDENCY]},
        "description": "Other tiers of this template, started first; each once",
    },
    "publish": {
        "type": "array",
        "maxItems": MAX_PORTS,
        "uniqueItems": True,
        "items": _PORT,
        "description": "Guest ports reachable from outside",
    },
    "settings": {
        "type": "object",
        "maxProperties": MAX_SETTINGS,
        "additionalProperties": _SETTING_VALUE,
        "description": f"Handed to the guest on its config drive; names match {SETTING_KEY.pattern}",
    },
}
TIER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "appliance"],
    "properties": _TIER_PROPERTIES,
    # A flavor, or sizes of one's own: not both (a null is the key left out).
    "not": {
        "required": ["flavor"],
        "properties": {"flavor": {"type": "string"}},
        "anyOf": [{"required": [size], "properties": {size: {"type": "integer"}}} for size in SIZE_LIMITS],
    },
}

DOCUMENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tiers"],
    "properties": {
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION_CHARS, "pattern": NO_NUL},
        "tiers": {"type": "array", "minItems": 1, "maxItems": MAX_TIERS, "items": TIER},
    },
    "description": (
        "The template as a JSON object (see the README). Tier names are unique, dependencies name other"
        f" tiers and go round in no circle; written as JSON it is at most {MAX_SOURCE_BYTES // 1024} KiB."
    ),
}


# A stored document, as the API returns it: every key present, normalized (dependencies as objects,
# settings as text). Nothing is refused on the way out, so no limits here.
STORED_DOCUMENT = {
    "type": "object",
    "required": ["tiers", "description"],
    "properties": {
        "description": {"type": "string"},
        "tiers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": list(_TIER_PROPERTIES),
                "properties": {
                    "name": {"type": "string"},
                    "appliance": {"type": "string"},
                    "version": _nullable({"type": "string"}),
                    "flavor": _nullable({"type": "string"}),
                    **{size: _nullable({"type": "integer"}) for size in SIZE_LIMITS},
                    "count": {"type": "integer"},
                    "depends_on": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["tier", "wait_for_port"],
                            "properties": {"tier": {"type": "string"}, "wait_for_port": {"type": "boolean"}},
                        },
                    },
                    "publish": {"type": "array", "items": {"type": "integer"}},
                    "settings": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
    },
}


@extend_schema_field(DOCUMENT, component_name="TemplateDocumentInput")
class TemplateDocumentField(serializers.DictField):
    """A template document sent as a JSON object; the parser checks it (``validate_document``)."""


@extend_schema_field(STORED_DOCUMENT, component_name="TemplateDocument")
class StoredDocumentField(serializers.JSONField):
    """A template's document as stored: normalized by the parser when it was saved."""

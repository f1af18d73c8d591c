"""The OpenAPI schema as the server behaves: its errors, its body rules and its implicit checks.

drf-spectacular describes what serializers say explicitly. What the API also does is added here,
derived from the same views and fields, so that schema and behaviour cannot drift apart:

- every operation lists the error answers it can give, each with the one error body
  (``portal.api.errors``): 400 for writes and query parameters, 401/403 where a caller must be
  signed in or allowed, 404 where the path names an object, 409 for the writes among the actions
  a viewset lists in ``conflict_actions``;
- request bodies are JSON (the form encodings DRF also parses are not part of the contract:
  nested quotas and template documents cannot be written in them);
- text fields state DRF's implicit checks: no NUL characters, and not blank once trimmed;
- serializers built on ``portal.api.validation`` state their rules (``additionalProperties``,
  ``oneOf``).
"""

from __future__ import annotations

from typing import Any

from django.core import validators
from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions, serializers

from portal.api.validation import ExactlyOneOf, StrictRequestSerializer

# What DRF's CharField refuses on its own: NUL characters (ProhibitNullCharactersValidator) and,
# unless blank is allowed, a value that is empty once whitespace is trimmed.
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK_NO_NUL = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Permissions that any signed-in caller passes: with only these, a read cannot answer 403.
_EVERYONE_SIGNED_IN = (permissions.AllowAny, permissions.IsAuthenticated)

ERROR_DESCRIPTIONS = {
    400: "The input is invalid (`invalid`, with `fields` naming what is wrong)",
    401: "Not signed in, or the token is unknown or expired",
    403: "The caller's role does not allow this (`permission_denied`), or a quota is full (`quota_exceeded`)",
    404: "No such object, or not one the caller may see (`not_found`)",
    409: "The object is not in a state that allows this (`invalid_state`), or no host has room (`no_capacity`)",
}


class ErrorSerializer(serializers.Serializer):
    """Every error of the API: a stable code, a sentence, and the fields to blame when there are any."""

    code = serializers.CharField(help_text="invalid, not_authenticated, permission_denied, not_found, ...")
    detail = serializers.CharField()
    # DRF's metaclass moves declared fields into _declared_fields, so this does not hide Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field (dotted for nested fields: quota.instances)",
    )


class PortalAutoSchema(AutoSchema):
    def map_parsers(self) -> list[Any]:
        media_types = super().map_parsers()
        return [media for media in media_types if media == "application/json"] or media_types

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status in self._error_statuses():
            documented = responses.get(str(status))
            if documented is None or "content" not in documented:
                response = self._get_response_for_code(ErrorSerializer, str(status), direction=direction)
                description = (documented or {}).get("description") or ERROR_DESCRIPTIONS[status]
                responses[str(status)] = {**response, "description": description}
        return responses

    def _error_statuses(self) -> list[int]:
        statuses = []
        # Writes may be refused by a service's own checks even without a body.
        takes_input = self.method not in _SAFE_METHODS or any(
            parameter.get("in") == "query" for parameter in self._get_parameters()
        )
        if takes_input:
            statuses.append(400)
        checks = self.view.get_permissions()
        if not all(isinstance(check, permissions.AllowAny) for check in checks):
            statuses.append(401)
            beyond_signed_in = any(not isinstance(check, _EVERYONE_SIGNED_IN) for check in checks)
            if self.method not in _SAFE_METHODS or beyond_signed_in:
                statuses.append(403)
        if "{" in self.path:
            statuses.append(404)
        # Only writes meet a state that refuses them; an action that also reads (GET members) reads freely.
        conflicting = getattr(self.view, "action", None) in getattr(self.view, "conflict_actions", ())
        if conflicting and self.method not in _SAFE_METHODS:
            statuses.append(409)
        return statuses

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction != "request":
            return schema
        for name, field in serializer.fields.items():
            field_schema = schema["properties"].get(name)
            if isinstance(field, serializers.CharField) and isinstance(field_schema, dict):
                _state_text_checks(field, field_schema)
        if isinstance(serializer, StrictRequestSerializer):
            schema["additionalProperties"] = False
        if isinstance(serializer, ExactlyOneOf):
            schema["oneOf"] = [{"required": [name]} for name in serializer.exactly_one_of]
        return schema


def _state_text_checks(field: serializers.CharField, schema: dict[str, Any]) -> None:
    """Add the pattern DRF's checks amount to, unless the field has its own (a regex, an email...)."""
    own_format = (validators.RegexValidator, validators.EmailValidator)
    if field.read_only or any(isinstance(check, own_format) for check in field.validators):
        return
    # allow_blank text is written by drf-spectacular as oneOf [the text, ""]: the pattern goes on the text.
    target = schema["oneOf"][0] if "oneOf" in schema else schema
    if target.get("type") != "string" or "pattern" in target or "format" in target:
        return
    target["pattern"] = NOT_BLANK_NO_NUL if field.trim_whitespace and not field.allow_blank else NO_NUL

"""The portal's domain errors: each carries a stable code and the HTTP status it means.

Services raise these; one DRF exception handler (``portal.api.errors``) and one helper for
HTML views (``portal.web_errors``) turn them into answers, with the same body everywhere:
``{"code": ..., "detail": ..., "fields": {...}}`` (``fields`` only when a field is to blame).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


class PortalError(Exception):
    """A request the portal refuses, for a reason the caller can read."""

    code = "invalid"
    status = 400

    def __init__(self, detail: str, *, fields: Mapping[str, str | list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields: dict[str, list[str]] = {
            name: [messages] if isinstance(messages, str) else list(messages)
            for name, messages in (fields or {}).items()
        }

    @classmethod
    def for_field(cls, field: str, message: str) -> Self:
        """The error of one named field; ``detail`` repeats the message so it reads on its own."""
        return cls(message, fields={field: message})

    def as_body(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return body


class Invalid(PortalError):
    """The request itself is wrong (a bad name, an out-of-range lease, an unknown user)."""

    @classmethod
    def from_django(cls, exc: ValidationError) -> Invalid:
        """Django's model or form validation error, with its field messages kept."""
        if not hasattr(exc, "error_dict"):
            return cls(exc.messages[0] if exc.messages else "something in the request is not valid")
        by_field = exc.message_dict
        fields = {name: messages for name, messages in by_field.items() if name != NON_FIELD_ERRORS}
        general = by_field.get(NON_FIELD_ERRORS, [])
        first = (
            general[0]
            if general
            else next((f"{name}: {m[0]}" for name, m in fields.items()), "something in the request is not valid")
        )
        return cls(first, fields=fields)


class NotFound(PortalError):
    """No such object, or not one the caller may see: both answer the same, so nothing leaks."""

    code = "not_found"
    status = 404


class PermissionDenied(PortalError):
    """The caller may see the object but their role does not allow the action."""

    code = "permission_denied"
    status = 403


class QuotaExceeded(PortalError):
    code = "quota_exceeded"
    status = 403


class NoCapacity(PortalError):
    """No enabled, healthy host has room (or no port is free); trying later may help."""

    code = "no_capacity"
    status = 409


class WrongState(PortalError):
    """The object is not in a state that allows the operation (deleting a deleted stack...)."""

    code = "invalid_state"
    status = 409

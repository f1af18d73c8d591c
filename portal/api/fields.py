"""Serializer fields whose checks are also what the OpenAPI schema states (one source for both)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.lease_bounds import out_of_lease_bounds
from provisioning.name_rules import NameRule

# Ids are 64-bit columns; the schema says so, so that clients do not send what cannot name a row.
MAX_ID = 2**63 - 1
# PostgreSQL's "integer" column, what PositiveIntegerField quotas are stored in.
MAX_INT32 = 2**31 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A primary key that only resolves inside ``scope(user)``: anything else is 'does not exist'."""

    def __init__(self, *, scope: Callable[..., QuerySet], **kwargs: Any) -> None:
        self._scope = scope
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        return self._scope(self.context["request"].user)


class FullMatchRegexValidator(RegexValidator):
    """Like Django's, but the whole value must match: ``$`` alone would let a trailing newline through."""

    def __call__(self, value: Any) -> None:
        pattern = self.regex if isinstance(self.regex, re.Pattern) else re.compile(self.regex)
        if not pattern.fullmatch(str(value)):
            raise serializers.ValidationError(self.message, code=self.code)


class NameField(serializers.CharField):
    """A name that follows ``rule`` (``provisioning.name_rules``), taken as sent, never trimmed: the
    schema's pattern is the rule's, and " web" must not pass a check that " web".strip() would."""

    def __init__(self, *, rule: NameRule, **kwargs: Any) -> None:
        # No max_length of its own: the pattern bounds the length, and a long name gets one message.
        super().__init__(trim_whitespace=False, **kwargs)
        anchored = re.compile(rf"^(?:{rule.pattern.pattern})$")  # anchors, for the schema's ECMA pattern
        self.validators.append(FullMatchRegexValidator(anchored, rule.message))


class LeaseSecondsField(serializers.IntegerField):
    """Seconds of a lease, within the portal's bounds (read from settings whenever a serializer is made),
    refused in the services' words: "``subject`` must be between 1 minute and 7 days"."""

    def __init__(self, *, subject: str = "lease", **kwargs: Any) -> None:
        out_of_range = out_of_lease_bounds(subject)
        kwargs["error_messages"] = {
            "min_value": out_of_range,
            "max_value": out_of_range,
            **kwargs.get("error_messages", {}),
        }
        super().__init__(min_value=settings.MIN_LEASE_SECONDS, max_value=settings.MAX_LEASE_SECONDS, **kwargs)

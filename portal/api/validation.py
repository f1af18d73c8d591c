"""Rules a request body follows as a whole, written once: the serializer enforces them and the
OpenAPI schema (``portal.api.schema``) states them from the same attributes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rest_framework import serializers

# The JSON type each kind of field takes. DRF itself is lenient on purpose, for form posts where
# everything is text: it reads "12" as 12, 12 as "12" and "yes" as true. In a JSON body that
# leniency hides client bugs and makes the schema's types untrue, so JSON values must have the type.
# Each with the key of the field's own message for a value it cannot read, so the words are DRF's.
_JSON_TYPES: tuple[tuple[type[serializers.Field], type, str], ...] = (
    (serializers.BooleanField, bool, "invalid"),
    (serializers.IntegerField, int, "invalid"),
    (serializers.PrimaryKeyRelatedField, int, "incorrect_type"),
    (serializers.CharField, str, "invalid"),
    (serializers.ChoiceField, str, "invalid_choice"),
)


def _wrong_json_type(field: serializers.Field, value: Any) -> str | None:
    """The field's message for ``value`` when it is not of the field's JSON type, else None."""
    if value is None:
        return None  # the field's own allow_null decides
    for kind, wanted, message_key in _JSON_TYPES:
        if isinstance(field, kind):
            # bool is a subclass of int in Python, not an integer in JSON
            right = isinstance(value, wanted) and (wanted is bool or not isinstance(value, bool))
            message = field.error_messages[message_key]
            return None if right else message.format(input=value, data_type=type(value).__name__)
    return None


class StrictRequestSerializer(serializers.Serializer):
    """A request body read strictly: an unknown key is refused, not silently ignored (a typo in
    ``lease`` would otherwise launch with the default lease), and in JSON every value must have
    its field's type. The schema says so (``additionalProperties: false`` and the types)."""

    unknown_key = "unknown field"

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            problems = {name: [self.unknown_key] for name in sorted(set(data) - set(self.fields))}
            if type(data) is dict:  # JSON; form posts arrive as a QueryDict, all text
                for name, field in self.fields.items():
                    wrong = _wrong_json_type(field, data.get(name)) if name in data else None
                    if wrong and not field.read_only:
                        problems[name] = [wrong]
            if problems:
                raise serializers.ValidationError(problems)
        return super().to_internal_value(data)


class ExactlyOneOf(StrictRequestSerializer):
    """A body gives exactly one of the fields in ``exactly_one_of``; the schema says so with ``oneOf``."""

    exactly_one_of: ClassVar[tuple[str, ...]] = ()
    exactly_one_of_message = "give exactly one of these fields"

    def validate(self, attrs: dict) -> dict:
        given = [name for name in self.exactly_one_of if name in attrs]
        if len(given) != 1:
            raise serializers.ValidationError({self.exactly_one_of[0]: self.exactly_one_of_message})
        return attrs

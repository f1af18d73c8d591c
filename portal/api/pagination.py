"""Limit/offset pages that refuse what they cannot read, so the schema's bounds are the real ones.

DRF's own ``LimitOffsetPagination`` quietly falls back to its defaults on ``?limit=abc`` or
``?offset=-3``: a client with a typo gets a page it did not ask for, and the schema's "integer"
is not what the server checks. Here a bad value answers 400 and the schema states the bounds.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_LIMIT = 1000
# Far past any table this portal holds; it only keeps the number inside what the database takes.
MAX_OFFSET = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


def _query_int(request: Request, name: str, *, minimum: int, maximum: int, default: int) -> int:
    """The query parameter ``name`` as an integer in [minimum, maximum], ``default`` when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if _DIGITS.fullmatch(raw) else None
    if value is None or not minimum <= value <= maximum:
        raise exceptions.ValidationError({name: [f"must be a whole number from {minimum} to {maximum}"]})
    return value


class StrictLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int:
        default = self.default_limit or MAX_LIMIT
        return _query_int(request, self.limit_query_param, minimum=1, maximum=MAX_LIMIT, default=default)

    def get_offset(self, request: Request) -> int:
        return _query_int(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET, default=0)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": MAX_LIMIT},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters

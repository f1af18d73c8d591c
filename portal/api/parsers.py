"""The API's JSON parser: DRF's, refusing as bad input (400) what DRF's would crash on or take in whole.

- Size: DRF reads a JSON body from the request stream, past Django's
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (only ``request.body`` checks it). Here a body over that size is
  refused once that much has been read.
- Depth: Python's json parser recurses, so a few thousand ``[`` end in ``RecursionError``, and a
  body just under that would make any later recursive walk over it fail instead. No request body
  of this API is more than a few levels deep; ``MAX_DEPTH`` leaves room for template documents.
- Text: JSON may write half of a surrogate pair (``"\\ud800"``). Python reads it into a string that
  cannot be encoded as UTF-8: neither stored by PostgreSQL nor written into the answer that quotes
  it (an unknown key is named in the error body), so it is refused here, in keys and values alike.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Deeper than any body the API takes (a template document is 6 levels inside its request).
MAX_DEPTH = 32


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise ParseError(f"the body is larger than {limit} bytes")
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep") from None
        _refuse_unreadable(data)
        return data


def _refuse_unreadable(data: object) -> None:
    """Walk the parsed body once, without recursion, for nesting and text no answer can carry."""
    pending: list[tuple[object, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                pending.append((key, depth))  # keys are text in JSON; list indexes pass as numbers
                pending.append((item, depth + 1))
        elif isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise ParseError("JSON parse error - text with an unpaired surrogate (\\ud800 to \\udfff)") from None

"""Reading untrusted JSON: bounded in size, in nesting, in the digits of a number, and unambiguous.

Python's ``json`` would read a number of a million digits (slowly, or fail with a ValueError about
integer conversion), ``NaN`` and ``Infinity``, and an object that names a key twice (keeping the
last: another reader of the same file may keep the first, so two tools would disagree on what a
stream says). Nesting is bounded by the interpreter's recursion limit, which ``json`` turns into a
``RecursionError``; the readers walk the result along fixed paths only, never recursively.
"""

from __future__ import annotations

import json
from typing import Any

from catalog.feed_formats.common import FeedError, quoted

MAX_NUMBER_DIGITS = 20  # more than any size or count a stream states (2**64 has 20 digits)


class _Refused(ValueError):
    pass


def _whole_number(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _Refused(f"a number of more than {MAX_NUMBER_DIGITS} digits ('{quoted(text)}')")
    return int(text)


def _no_constant(name: str) -> Any:
    raise _Refused(f"'{name}', which is no number JSON allows")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # rare: only then is the key looked for
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _Refused(f"the key '{quoted(key)}' twice in one object")
            seen.add(key)
    return result


def load(data: bytes, *, what: str, max_bytes: int) -> Any:
    """The JSON document in ``data``, or ``FeedError`` naming ``what`` and what is wrong with it."""
    if len(data) > max_bytes:
        raise FeedError(f"{what} is over the limit of {max_bytes} bytes (PORTAL_FEED_MAX_BYTES)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, parse_int=_whole_number, parse_constant=_no_constant, object_pairs_hook=_object)
    except RecursionError:
        raise FeedError(f"{what} nests its JSON too deeply to be read") from None
    except _Refused as exc:
        raise FeedError(f"{what} holds {exc}") from None
    except json.JSONDecodeError as exc:
        raise FeedError(f"{what} is not well-formed JSON: {exc.msg} (line {exc.lineno})") from None

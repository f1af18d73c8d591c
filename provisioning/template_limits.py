"""How large a stack template may be, and a first look at any parsed document before it is read.

A template is written by a tenant and read by the portal; its parsed form can be anything YAML
or JSON can build. ``shape_problems`` walks it once, without recursion, and names by path what
no template can hold and what would break the code that reads it: nesting deeper than a template
goes, keys that are not text (they cannot be sorted or named), numbers too large to turn into
text (Python refuses past 4300 digits), and text the database or a JSON answer cannot carry (NUL
characters, unpaired surrogates). Only a document that passes is read key by key
(``provisioning.templates``), where every list and mapping has its own limit below.
"""

from __future__ import annotations

import re

MAX_SOURCE_BYTES = 64 * 1024
MAX_TIERS = 10
MAX_COUNT = 10
# A tier depends on each other tier at most once.
MAX_DEPENDENCIES = MAX_TIERS - 1
MAX_PORTS = 8
MAX_SETTINGS = 32
MAX_SETTING_CHARS = 4096
MAX_DESCRIPTION_CHARS = 1000
MAX_VERSION_CHARS = 50
# A template is five levels deep (template, tiers, tier, depends_on, dependency); a little room
# for mistakes that still deserve a precise answer, none for a parser's recursion.
MAX_DEPTH = 8
MAX_KEY_CHARS = 64
# Whole numbers a template may hold: 64-bit signed, what every size and port fits in many times.
MAX_INT_BITS = 63
MAX_INT_DIGITS = 19
LARGEST = 2**MAX_INT_BITS - 1
# One answer names at most this many problems; the rest are counted.
MAX_PROBLEMS = 50

TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
BAD_TEXT = "text may not contain NUL characters or unpaired surrogates"
TOO_MANY_DIGITS = f"numbers have at most {MAX_INT_DIGITS} digits (quote a longer one to use it as text)"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """True when ``text`` holds a NUL (PostgreSQL's text and jsonb refuse it) or an unpaired
    surrogate (it cannot be encoded as UTF-8: not stored, not sent back in an answer)."""
    return _UNSTORABLE.search(text) is not None


def number_too_large(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def shape_problems(data: object) -> list[tuple[str, str]]:
    """(path, message) for each part of ``data`` no template may hold, in document order.

    Walks iteratively and visits each list or mapping once (YAML aliases can share one many times,
    or make it contain itself), so the walk costs at most the size of the text it came from.
    """
    problems: list[tuple[str, str]] = []
    seen: set[int] = set()
    pending: list[tuple[object, str, int]] = [(data, "", 0)]
    while pending and len(problems) < MAX_PROBLEMS:
        value, path, depth = pending.pop()
        where = path or "source"
        if isinstance(value, dict | list | tuple | set | frozenset):  # YAML's !!omap, !!pairs, !!set too
            if id(value) in seen:
                continue
            seen.add(id(value))
            if depth >= MAX_DEPTH:
                problems.append((where, TOO_DEEP))
                continue
            children = _children(value, path, problems)
            pending.extend((child, child_path, depth + 1) for child, child_path in reversed(children))
        elif isinstance(value, str) and unstorable(value):
            problems.append((where, BAD_TEXT))
        elif number_too_large(value):
            problems.append((where, TOO_MANY_DIGITS))
    return problems


def _children(value: object, path: str, problems: list[tuple[str, str]]) -> list[tuple[object, str]]:
    if not isinstance(value, dict):
        assert isinstance(value, list | tuple | set | frozenset)
        return [(item, f"{path}[{index}]") for index, item in enumerate(value)]
    children = []
    for key, item in value.items():
        label, problem = _key_label(key)
        if problem is not None:
            problems.append((path or "source", problem))
        elif not isinstance(key, str):
            problems.append((child_path(path, label), "names are text: quote this one"))
        else:
            children.append((item, child_path(path, key)))
    return children


def _key_label(key: object) -> tuple[str, str | None]:
    """How a key reads in a path, or why it cannot be named there."""
    if isinstance(key, str):
        if unstorable(key):
            return "", f"a name's {BAD_TEXT}"
        if len(key) > MAX_KEY_CHARS:
            return "", f"names have at most {MAX_KEY_CHARS} characters"
        return key, None
    if number_too_large(key):
        return "", f"a name is a number: {TOO_MANY_DIGITS}"
    if key is None or isinstance(key, bool):
        return {None: "null", True: "true", False: "false"}[key], None
    if isinstance(key, int | float):
        return repr(key), None
    # Dates, times, binary: YAML builds them from plain-looking text. Named by kind, not quoted back.
    return getattr(key, "isoformat", lambda: f"<{type(key).__name__}>")(), None

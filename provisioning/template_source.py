"""Template text (YAML or JSON) into plain data, without letting the text steer the parser.

What a hostile text tries here, and what stops it:
- nesting thousands of levels deep: PyYAML builds nodes recursively and Python's json does too, so
  deep enough text ends in ``RecursionError``. The YAML loader counts levels and stops at
  ``MAX_DEPTH``; JSON's own recursion guard is caught and answered the same way;
- numbers of thousands of digits: Python refuses to read (or print) more than 4300 digits with a
  ``ValueError``, and hex or binary ones it reads can then not be printed. Both parsers refuse long
  numbers outright; shorter large ones are named by path afterwards (``template_limits``);
- YAML merge keys (``<<``): each copies a mapping's entries into another, so a few lines can ask for
  billions of entries. A template has no use for them; anchors and aliases still work (they share
  one value, never copy it);
- values PyYAML cannot build (a 13th month, an ``!!int`` that is no number): whatever its
  constructors raise is answered as invalid YAML.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import MappingStartEvent, SequenceStartEvent
from yaml.nodes import Node

from portal import errors
from provisioning.template_limits import MAX_DEPTH, MAX_INT_DIGITS, MAX_SOURCE_BYTES, TOO_DEEP

# Longer than any number a template may hold in any notation (19 digits, or 63 binary ones with
# their "0b" and a sign), short enough that reading it costs nothing.
_MAX_NUMBER_TEXT = 80
_MERGE_TAG = "tag:yaml.org,2002:merge"
MERGE_KEYS = "merge keys (<<) are not supported: write the entries out"
LONG_NUMBER = f"a number with more than {MAX_INT_DIGITS} digits (quote it to use it as text)"


class TemplateLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a depth limit, no merge keys and no long numbers."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        opens = self.check_event(SequenceStartEvent, MappingStartEvent)
        if opens and self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, TOO_DEEP, self.peek_event().start_mark)
        self._depth += opens
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= opens

    def flatten_mapping(self, node: Any) -> None:
        if any(key.tag == _MERGE_TAG for key, _value in node.value):
            raise ConstructorError(None, None, MERGE_KEYS, node.start_mark)
        super().flatten_mapping(node)

    def construct_yaml_int(self, node: Any) -> int:
        if len(self.construct_scalar(node)) > _MAX_NUMBER_TEXT:
            raise ConstructorError(None, None, LONG_NUMBER, node.start_mark)
        return int(super().construct_yaml_int(node))


TemplateLoader.add_constructor("tag:yaml.org,2002:int", TemplateLoader.construct_yaml_int)


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise errors.Invalid.for_field("source", f"not valid JSON: {LONG_NUMBER}")
    return int(text)


def load_source(source: str) -> object:
    """The data a template's text describes; ``errors.Invalid`` on ``source`` if it cannot be read."""
    return read_source(source)[0]


def read_source(source: str) -> tuple[object, Node | None]:
    """``load_source``'s data, and the YAML nodes it was built from (None for JSON): their marks say
    where each part is written (counted from the first line that is not blank: ``leading_lines``
    says how many come before), so one reading serves both the data and its line numbers."""
    try:
        size = len(source.encode())
    except UnicodeEncodeError:
        raise errors.Invalid.for_field(
            "source", "the text has an unpaired surrogate: it is not valid Unicode"
        ) from None
    if size > MAX_SOURCE_BYTES:
        raise errors.Invalid.for_field("source", f"a template may be at most {MAX_SOURCE_BYTES // 1024} KiB")
    text = source.strip()
    try:
        # JSON is YAML too, but its errors read better as JSON.
        if text.startswith("{"):
            return json.loads(text, parse_int=_json_int), None
        return _load_yaml(text)
    except RecursionError:  # JSON's own guard; the YAML loader stops long before
        raise errors.Invalid.for_field("source", TOO_DEEP) from None
    except json.JSONDecodeError as exc:
        # Line numbers count from the text as written, leading blank lines included.
        line = exc.lineno + leading_lines(source)
        where = f"line {line}, column {exc.colno}"
        raise errors.Invalid.for_field("source", f"not valid JSON ({where}): {_json_problem(exc.msg)}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1 + leading_lines(source)}, column {mark.column + 1})" if mark else ""
        raise errors.Invalid.for_field("source", f"not valid YAML{where}: {_yaml_problem(exc)}") from None


def leading_lines(source: str) -> int:
    """Lines ``strip`` took off the front: the parser counts from the first kept one."""
    return source[: len(source) - len(source.lstrip())].count("\n")


# What the parsers say, in the words of someone reading a template rather than a parser's source.
_YAML_PROBLEMS = (
    (
        "mapping values are not allowed here",
        "a ':' where none may be: check the indentation, or quote text with ': ' in it",
    ),
    ("could not find expected ':'", "a line without 'name: value' inside a mapping"),
    ("expected <block end>", "this line is indented differently from the lines it belongs with"),
    ("did not find expected key", "this line is indented differently from the lines it belongs with"),
    ("did not find expected '-' indicator", "a list item without its '-', or indented differently"),
    (
        "that cannot start any token",
        "a character that cannot start a value here (quote the value; indent with spaces, not tabs)",
    ),
    ("found undefined alias", "an alias (*name) with no anchor (&name) before it"),
    ("found unexpected end of stream", "the text ends inside a quoted value: close its quote"),
    ("unknown escape character", "an unknown \\ sequence inside double quotes: use single quotes for plain text"),
    ("but found another document", "more than one document ('---'): a template is one"),
    ("expected ',' or ']'", "a list opened with '[' is not closed with ']'"),
    ("expected ',' or '}'", "a mapping opened with '{' is not closed with '}'"),
    ("expected the node content, but found '<stream end>'", "the text ends where a value is still expected"),
    ("found duplicate anchor", "two anchors (&name) with the same name"),
    ("found unhashable key", "a list or mapping used as a name: names are text"),
    ("could not determine a constructor for the tag", "an unknown tag (!!...): leave it out"),
)
_JSON_PROBLEMS = (
    ("Expecting value", "a value is missing"),
    ("Expecting ':' delimiter", "a ':' is missing after a name"),
    ("Expecting ',' delimiter", "a ',' is missing between two entries"),
    ("Expecting property name enclosed in double quotes", "a name in double quotes is expected (no ',' before '}')"),
    ("Extra data", "there is more text after the closing '}'"),
    ("Unterminated string", "a text value is not closed with '\"'"),
    ("Invalid control character", "a line break or tab inside a text value (write \\n or \\t)"),
)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    said = f"{getattr(exc, 'problem', None) or exc}"
    if said in (TOO_DEEP, MERGE_KEYS, LONG_NUMBER):  # the loader's own limits, already worded
        return said
    return next((plain for known, plain in _YAML_PROBLEMS if known in said), f"the YAML reader says “{said}”")


def _json_problem(said: str) -> str:
    return next((plain for known, plain in _JSON_PROBLEMS if said.startswith(known)), said)


def _load_yaml(text: str) -> tuple[object, Node | None]:
    loader = TemplateLoader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    except yaml.YAMLError:
        raise
    except Exception as exc:
        # PyYAML's constructors turn a scalar into a value with int(), float(), base64, datetime and
        # regular expressions, and an odd scalar makes them raise whatever those raise: ValueError
        # for a 13th month, IndexError for `!!int ""`, AttributeError for `!!timestamp x`. Each is a
        # fault of the text, not of the portal.
        raise errors.Invalid.for_field(
            "source", f"not valid YAML: a value cannot be read as what it looks like ({str(exc)[:200]}); quote it"
        ) from None
    finally:
        loader.dispose()

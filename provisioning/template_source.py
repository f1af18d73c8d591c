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

from portal import errors
from provisioning.template_limits import MAX_DEPTH, MAX_INT_DIGITS, MAX_SOURCE_BYTES, TOO_DEEP

# Longer than any number a template may hold in any notation (19 digits, or 63 binary ones with
# their "0b" and a sign), short enough that reading it costs nothing.
_MAX_NUMBER_TEXT = 80
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TemplateLoader(yaml.SafeLoader):
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
            raise ConstructorError(None, None, "merge keys (<<) are not supported", node.start_mark)
        super().flatten_mapping(node)

    def construct_yaml_int(self, node: Any) -> int:
        if len(self.construct_scalar(node)) > _MAX_NUMBER_TEXT:
            raise ConstructorError(None, None, f"a number with more than {MAX_INT_DIGITS} digits", node.start_mark)
        return int(super().construct_yaml_int(node))


_TemplateLoader.add_constructor("tag:yaml.org,2002:int", _TemplateLoader.construct_yaml_int)


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise errors.Invalid.for_field("source", f"not valid JSON: a number with more than {MAX_INT_DIGITS} digits")
    return int(text)


def load_source(source: str) -> object:
    """The data a template's text describes; ``errors.Invalid`` on ``source`` if it cannot be read."""
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
        return json.loads(text, parse_int=_json_int) if text.startswith("{") else _load_yaml(text)
    except RecursionError:  # JSON's own guard; the YAML loader stops long before
        raise errors.Invalid.for_field("source", TOO_DEEP) from None
    except json.JSONDecodeError as exc:
        raise errors.Invalid.for_field("source", f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise errors.Invalid.for_field("source", f"not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None


def _load_yaml(text: str) -> object:
    loader = _TemplateLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError:
        raise
    except Exception as exc:
        # PyYAML's constructors turn a scalar into a value with int(), float(), base64, datetime and
        # regular expressions, and an odd scalar makes them raise whatever those raise: ValueError
        # for a 13th month, IndexError for `!!int ""`, AttributeError for `!!timestamp x`. Each is a
        # fault of the text, not of the portal.
        raise errors.Invalid.for_field("source", f"not valid YAML: a value cannot be read ({str(exc)[:200]})") from None
    finally:
        loader.dispose()

"""Where in a template's text each part is written, so a problem can be shown with its line.

Problems name parts by path (``tiers[1].count``); a person editing the text looks for a line.
``path_lines`` composes the text (YAML's node tree, which keeps each node's position; JSON is
read the same way) with the template loader's limits, and ``line_of`` finds a path's line, or the
line of the nearest part that is written when the path names something missing (a tier without
``name`` is shown at the tier's line).
"""

from __future__ import annotations

import re

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provisioning.template_limits import MAX_SOURCE_BYTES, child_path
from provisioning.template_source import TemplateLoader

_LAST_STEP = re.compile(r"(\.[^.\[\]]*|\[\d+\])$")


def path_lines(source: str) -> dict[str, int]:
    """The line (counted from 1) of each path the text writes; empty when the text cannot be read."""
    if len(source) > MAX_SOURCE_BYTES:
        return {}
    loader = TemplateLoader(source)
    try:
        root = loader.get_single_node()
    except Exception:  # unreadable text: its own problem says where
        return {}
    finally:
        loader.dispose()
    return node_lines(root) if root is not None else {}


def node_lines(root: Node, *, first_line: int = 1) -> dict[str, int]:
    """The line of each path under ``root``, the node tree's first line being ``first_line``.

    Iteratively, each node once: aliases share nodes, and may make one contain itself.
    """
    offset = first_line - 1
    lines: dict[str, int] = {}
    seen: set[int] = set()
    pending: list[tuple[Node, str]] = [(root, "")]
    while pending:
        node, path = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if not isinstance(key, ScalarNode):
                    continue
                where = child_path(path, str(key.value))
                lines.setdefault(where, key.start_mark.line + 1 + offset)
                pending.append((value, where))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                where = f"{path}[{index}]"
                lines.setdefault(where, item.start_mark.line + 1 + offset)
                pending.append((item, where))
    return lines


def line_of(path: str, lines: dict[str, int]) -> int | None:
    """The line of ``path``, or of the nearest enclosing part that is written; None for the whole text."""
    while path:
        if path in lines:
            return lines[path]
        shorter = _LAST_STEP.sub("", path)
        if shorter == path:
            return None
        path = shorter
    return None

"""Parsing a package's XML descriptor without trusting it: no DTD, no entities, bounded size.

A descriptor needs neither a DOCTYPE nor entities, and both are how XML reads local files (external
entities) or inflates a few bytes into gigabytes (nested entities). So the parser refuses any
document that declares a DOCTYPE before it gets to an entity, and never reads an external one.
Expat is driven directly, building an ElementTree; tags and attributes keep their namespaces in
ElementTree's "{uri}local" form, and readers match on local names through ``local``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from xml.parsers import expat

from catalog.packages.errors import PackageError

MAX_DESCRIPTOR_BYTES = 1024 * 1024  # a domain definition or an OVF descriptor is a few KiB


def parse_xml(data: bytes, *, what: str) -> ET.Element:
    """The document's root element; ``PackageError`` for anything malformed, oversized or declaring a DOCTYPE."""
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise PackageError(f"{what} is {len(data)} bytes, more than {MAX_DESCRIPTOR_BYTES}")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse_doctype(*_args: object) -> None:
        raise PackageError(f"{what} declares a DOCTYPE; refusing it (a descriptor needs no DTD or entities)")

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = lambda name, attributes: builder.start(
        _qualified(name), {_qualified(key): value for key, value in attributes.items()}
    )
    parser.EndElementHandler = lambda name: builder.end(_qualified(name))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        reason = expat.errors.messages[exc.code]
        raise PackageError(f"{what} is not well-formed XML ({reason}, line {exc.lineno})") from None
    return builder.close()


def _qualified(name: str) -> str:
    # Expat gives "uri}local" for names in a namespace; ElementTree spells them "{uri}local".
    return "{" + name if "}" in name else name


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    """The direct children of ``element`` whose local name is ``name``, whatever their namespace."""
    return (child for child in element if local(child.tag) == name)


def child(element: ET.Element, name: str) -> ET.Element | None:
    return next(children(element, name), None)


def attribute(element: ET.Element, name: str) -> str:
    """The attribute of local name ``name`` ("" when absent), whatever its namespace prefix."""
    for key, value in element.attrib.items():
        if local(key) == name:
            return value.strip()
    return ""


def text_of(element: ET.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def whole_number(text: str, *, limit_digits: int = 18) -> int | None:
    """A non-negative integer written in the descriptor, or None when it is not one (or absurdly long)."""
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= limit_digits else None

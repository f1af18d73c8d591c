"""Reading a VMcast: bytes in (already fetched by catalog.fetch), validated items out.

feedparser does the RSS work; this module decides what a usable appliance item is. A feed
is all or nothing: if any item is unusable the import fails and names every problem, so a
half-read feed never changes the catalog.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax import SAXParseException

import feedparser

from catalog import vmcast
from catalog.redaction import redact_urls_in

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
IDENTIFIER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
SUPPORTED_FORMATS = ("qcow2", "raw")
SUPPORTED_ARCHES = ("x86_64",)


class FeedError(Exception):
    """The feed cannot be used; the message lists what is wrong (URLs in it redacted)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_urls_in(message))


@dataclass(frozen=True)
class ParsedItem:
    appliance: str
    title: str
    description: str
    role: str
    version: str
    url: str
    size_bytes: int
    media_type: str
    sha256: str
    disk_format: str
    arch: str
    min_ram_mib: int
    min_vcpus: int
    service_port: int | None
    published: datetime | None


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    items: list[ParsedItem]


def parse_vmcast(data: bytes) -> ParsedFeed:
    # Always a stream: given bytes (or str), feedparser first tries them as a local file name (and a
    # str as a URL to fetch), so a server answering "/dev/zero" or the path of a local file would
    # have the worker read that instead, past every guard of catalog.fetch.
    parsed = feedparser.parse(io.BytesIO(data), sanitize_html=True, resolve_relative_uris=False)
    if parsed.get("bozo") and isinstance(parsed.get("bozo_exception"), SAXParseException):
        raise FeedError(
            f"not a well-formed XML feed: {parsed.bozo_exception.getMessage()} "
            f"(line {parsed.bozo_exception.getLineNumber()})"
        )
    if not str(parsed.get("version", "")).startswith("rss"):
        raise FeedError("not an RSS feed (a VMcast is RSS 2.0 with one <item> per appliance version)")
    if not parsed.entries:
        raise FeedError("the feed has no items")
    prefix = _our_prefix(parsed.get("namespaces", {}))
    items: list[ParsedItem] = []
    problems: list[str] = []
    for index, entry in enumerate(parsed.entries, start=1):
        label = entry.get("title") or entry.get("id") or f"item {index}"
        try:
            items.append(_parse_item(entry, prefix))
        except ValueError as exc:
            problems.append(f"item '{label}': {exc}")
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item.appliance, item.version)
        if key in seen:
            problems.append(f"appliance '{item.appliance}' version '{item.version}' appears twice")
        seen.add(key)
    if problems:
        raise FeedError("; ".join(problems))
    return ParsedFeed(title=parsed.feed.get("title", "")[:200], items=items)


def _our_prefix(namespaces: dict[str, str]) -> str:
    # feedparser names unknown-namespace elements after the prefix the document chose, so
    # look the prefix up by namespace URI instead of assuming "vmc".
    for prefix, uri in namespaces.items():
        if uri.rstrip("/") == vmcast.NAMESPACE and prefix:
            return prefix
    raise FeedError(f"the feed does not use the VMcast namespace {vmcast.NAMESPACE}")


def _field(entry: dict, prefix: str, name: str, *, required: bool = True) -> str:
    value = str(entry.get(f"{prefix}_{name}", "")).strip()
    if required and not value:
        raise ValueError(f"missing <{prefix}:{name}>")
    return value


def _positive_int(text: str, what: str, *, maximum: int) -> int:
    if not text.isdigit() or not 0 < int(text) <= maximum:
        raise ValueError(f"{what} must be a whole number from 1 to {maximum}, not '{text}'")
    return int(text)


def _parse_item(entry: dict, prefix: str) -> ParsedItem:
    enclosures = entry.get("enclosures") or []
    if not enclosures:
        raise ValueError("no <enclosure> (the image URL)")
    if len(enclosures) > 1:
        raise ValueError("more than one <enclosure>")
    enclosure = enclosures[0]
    url = enclosure.get("href", "")
    if not url.startswith(("http://", "https://", "file://")):
        raise ValueError(f"enclosure URL '{url}' is not http, https or file")
    size_bytes = _positive_int(str(enclosure.get("length", "")), "enclosure length", maximum=2**50)

    appliance = _field(entry, prefix, "appliance").lower()
    if not IDENTIFIER_RE.match(appliance):
        raise ValueError(f"appliance identifier '{appliance}' may only hold a-z, 0-9, '.', '_' and '-'")
    sha256 = _field(entry, prefix, "sha256").lower()
    if not SHA256_RE.match(sha256):
        raise ValueError("sha256 must be 64 hex digits")
    disk_format = _field(entry, prefix, "format").lower()
    if disk_format not in SUPPORTED_FORMATS:
        raise ValueError(f"disk format '{disk_format}' is not one of {', '.join(SUPPORTED_FORMATS)}")
    arch = _field(entry, prefix, "arch", required=False) or "x86_64"
    if arch not in SUPPORTED_ARCHES:
        raise ValueError(f"architecture '{arch}' is not supported")
    port_text = _field(entry, prefix, "port", required=False)
    published = entry.get("published_parsed")
    return ParsedItem(
        appliance=appliance,
        title=(entry.get("title") or appliance)[:200],
        description=entry.get("summary", ""),
        role=_field(entry, prefix, "role", required=False)[:30],
        version=_field(entry, prefix, "version")[:50],
        url=url,
        size_bytes=size_bytes,
        media_type=enclosure.get("type", "")[:100],
        sha256=sha256,
        disk_format=disk_format,
        arch=arch,
        min_ram_mib=_positive_int(_field(entry, prefix, "minram", required=False) or "128", "minram", maximum=2**20),
        min_vcpus=_positive_int(_field(entry, prefix, "mincpu", required=False) or "1", "mincpu", maximum=256),
        service_port=_positive_int(port_text, "port", maximum=65535) if port_text else None,
        published=datetime(*published[:6]).replace(tzinfo=UTC) if published else None,
    )

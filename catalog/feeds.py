"""Reading a VMcast: bytes in (already fetched by catalog.fetch), validated items out.

feedparser does the RSS work; this module decides what a usable appliance item is. A feed
is all or nothing: if any item is unusable, or the feed lists more items than one feed may
(``PORTAL_FEED_MAX_ITEMS``), the import fails and names the problems, so a half-read feed never
changes the catalog. Everything quoted from the feed in those problems is cut short: a tenant
reads them, and one feed must not fill a page with them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax import SAXParseException

import feedparser
from django.conf import settings

from catalog import vmcast
from catalog.fetch import FetchError, validate_url
from catalog.redaction import redact_url, redact_urls_in
from provisioning.name_rules import TIER_NAME

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
IDENTIFIER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
SUPPORTED_FORMATS = ("qcow2", "raw")
SUPPORTED_ARCHES = ("x86_64",)
# Problems named in one error (the rest are counted), and characters quoted from the feed in each.
MAX_PROBLEMS_LISTED = 10
MAX_QUOTED_CHARS = 60
# A description is prose for a card and a page; past this it is cut (the feed is not refused for it).
MAX_DESCRIPTION_CHARS = 4000


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
    sha256: str  # "" when the feed gives none: the first download's is pinned
    disk_format: str  # as declared; "" when the feed does not say (the file's magic bytes decide)
    arch: str
    min_ram_mib: int
    min_vcpus: int
    service_port: int | None
    published: datetime | None
    virtual_size_bytes: int | None = None  # declared by the feed; launches claim it before any download
    checksum_source: str = "feed"  # ApplianceVersion.ChecksumSource: "feed" or "pinned"
    package: str = "disk"  # ApplianceVersion.Package: "disk", "xvm2" or "ova"


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    items: list[ParsedItem]
    format: str = "vmcast"  # Feed.Format


def parse_vmcast(data: bytes, *, max_items: int | None = None) -> ParsedFeed:
    """The feed's items, or ``FeedError``; at most ``max_items`` (default ``PORTAL_FEED_MAX_ITEMS``)."""
    max_items = settings.FEED_MAX_ITEMS if max_items is None else max_items
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
    if len(parsed.entries) > max_items:
        # Refused whole rather than cut: which items would make it depends on the publisher's order,
        # and a catalog missing versions without a word is worse than a feed that says why it failed.
        raise FeedError(
            f"the feed has {len(parsed.entries)} items, more than the {max_items} the portal reads "
            "from one feed (PORTAL_FEED_MAX_ITEMS)"
        )
    prefix = _our_prefix(parsed.get("namespaces", {}))
    items: list[ParsedItem] = []
    problems: list[str] = []
    for index, entry in enumerate(parsed.entries, start=1):
        label = _quoted(entry.get("title") or entry.get("id") or f"item {index}")
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
        raise FeedError(problem_list(problems))
    return ParsedFeed(title=parsed.feed.get("title", "")[:200], items=items)


def problem_list(problems: list[str]) -> str:
    """The first problems, and how many more: enough for a publisher to start fixing, bounded in size."""
    shown = "; ".join(problems[:MAX_PROBLEMS_LISTED])
    more = len(problems) - MAX_PROBLEMS_LISTED
    return f"{shown}; and {more} more problem{'s' if more > 1 else ''}" if more > 0 else shown


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(value: str) -> str:
    """A value from the feed as a problem quotes it: on one line, and cut short."""
    return _cut(" ".join(str(value).split()), MAX_QUOTED_CHARS)


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
        raise ValueError(f"{what} must be a whole number from 1 to {maximum}, not '{_quoted(text)}'")
    return int(text)


def _parse_item(entry: dict, prefix: str) -> ParsedItem:
    enclosures = entry.get("enclosures") or []
    if not enclosures:
        raise ValueError("no <enclosure> (the image URL)")
    if len(enclosures) > 1:
        raise ValueError("more than one <enclosure>")
    enclosure = enclosures[0]
    url = enclosure.get("href", "")
    shown = _quoted(redact_url(url))  # redacted before it is cut, so a cut cannot keep half a password
    if not url.startswith(("http://", "https://", "file://")):
        raise ValueError(f"enclosure URL '{shown}' is not http, https or file")
    try:
        validate_url(url)
    except FetchError as exc:
        # The reason first: words after a URL in a message are read as part of it when redacted.
        raise ValueError(f"{exc}: enclosure URL '{shown}'") from None
    size_bytes = _positive_int(str(enclosure.get("length", "")), "enclosure length", maximum=2**50)

    appliance = _field(entry, prefix, "appliance").lower()
    if not IDENTIFIER_RE.match(appliance):
        raise ValueError(f"appliance identifier '{_quoted(appliance)}' may only hold a-z, 0-9, '.', '_' and '-'")
    sha256 = _field(entry, prefix, "sha256").lower()
    if not SHA256_RE.match(sha256):
        raise ValueError("sha256 must be 64 hex digits")
    disk_format = _field(entry, prefix, "format").lower()
    if disk_format not in SUPPORTED_FORMATS:
        raise ValueError(f"disk format '{_quoted(disk_format)}' is not one of {', '.join(SUPPORTED_FORMATS)}")
    arch = _field(entry, prefix, "arch", required=False) or "x86_64"
    if arch not in SUPPORTED_ARCHES:
        raise ValueError(f"architecture '{_quoted(arch)}' is not supported")
    # The role names the tier of the appliance's one-click launch (and of its instances' names): a
    # role that is no tier name would make every such launch fail, so the item is refused here.
    role = _field(entry, prefix, "role", required=False).lower()
    if role and not TIER_NAME.pattern.fullmatch(role):
        raise ValueError(f"role '{_quoted(role)}' is not a tier name: {TIER_NAME.rule}")
    port_text = _field(entry, prefix, "port", required=False)
    virtual_text = _field(entry, prefix, "virtualsize", required=False)
    published = entry.get("published_parsed")
    return ParsedItem(
        appliance=appliance,
        title=(entry.get("title") or appliance)[:200],
        description=_cut(entry.get("summary", ""), MAX_DESCRIPTION_CHARS),
        role=role,
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
        virtual_size_bytes=_positive_int(virtual_text, "virtualsize", maximum=2**50) if virtual_text else None,
    )

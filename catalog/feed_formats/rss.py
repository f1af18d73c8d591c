"""What the RSS dialects share: reading the bytes with feedparser, and reading an item's enclosure.

feedparser does the XML; every value it hands over is still the publisher's and checked here or by
the dialect's reader.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple
from xml.sax import SAXParseException

import feedparser

from catalog.feed_formats.common import (
    MAX_IMAGE_BYTES,
    MAX_MEDIA_TYPE_CHARS,
    FeedError,
    ParsedFeed,
    ParsedItem,
    checked_url,
    finish,
    parse_moment,
    positive_int,
    quoted,
)

# A feedparser entry as a plain dict (``items``): what the feed wrote, without feedparser's aliases,
# and read several times faster than through its FeedParserDict (which matters at thousands of items).
Entry = dict[str, Any]

_NOT_RSS = {"atom": "an Atom feed", "cdf": "a Channel Definition Format file"}

# What an enclosure's media type (or, failing that, its file name) says it holds. A package is
# taken apart when first downloaded; a disk image's declared format must match its magic bytes.
XVM2_TYPES = frozenset({"application/enomalism2-xvm2", "application/x-enomalism2-xvm2"})
OVA_TYPES = frozenset({"application/x-ova", "application/ova", "application/ovf", "application/x-virtualbox-ova"})
# Only names that mean one format. "raw" is never inferred: raw has no magic bytes that could confirm
# it, so an undeclared image is left to its own bytes ("" below) rather than guessed. Nor is ".img"
# (Ubuntu's .img files are qcow2) or application/octet-stream.
DISK_TYPES = {
    "application/x-qemu-disk": "qcow2",
    "application/x-qcow2": "qcow2",
    "application/x-vmdk": "vmdk",
    "application/x-virtualbox-vmdk": "vmdk",
    "application/x-vdi": "vdi",
    "application/x-virtualbox-vdi": "vdi",
    "application/x-vhdx": "vhdx",
    "application/x-virtualbox-vhdx": "vhdx",
}
DISK_SUFFIXES = {".qcow2": "qcow2", ".vmdk": "vmdk", ".vdi": "vdi", ".vhdx": "vhdx"}


def feedparser_reading(data: bytes) -> Any:
    """feedparser's reading of ``data``, as every RSS dialect gets it (and benchmarks take as the floor)."""
    # Always a stream: given bytes (or str), feedparser first tries them as a local file name (and a
    # str as a URL to fetch), so a server answering "/dev/zero" or the path of a local file would
    # have the worker read that instead, past every guard of catalog.fetch.
    return feedparser.parse(io.BytesIO(data), sanitize_html=True, resolve_relative_uris=False)


def read(data: bytes, *, max_items: int) -> Any:
    """feedparser's reading of an RSS feed with 1 to ``max_items`` items, or ``FeedError`` saying what it is instead."""
    parsed = feedparser_reading(data)
    if parsed.get("bozo") and isinstance(parsed.get("bozo_exception"), SAXParseException):
        raise FeedError(
            f"not a well-formed XML feed: {parsed.bozo_exception.getMessage()} "
            f"(line {parsed.bozo_exception.getLineNumber()})"
        )
    version = str(parsed.get("version", ""))
    if not version.startswith("rss"):
        seen = next((words for prefix, words in _NOT_RSS.items() if version.startswith(prefix)), "")
        raise FeedError(
            f"not an RSS feed{f' (it is {seen})' if seen else ''}: a VMcast is RSS 2.0 with one <item> per "
            "appliance version"
        )
    if not parsed.entries:
        raise FeedError("the feed has no items")
    if len(parsed.entries) > max_items:
        # Refused whole rather than cut: which items would make it depends on the publisher's order,
        # and a catalog missing versions without a word is worse than a feed that says why it failed.
        raise FeedError(
            f"the feed has {len(parsed.entries)} items, more than the {max_items} the portal reads "
            "from one feed (PORTAL_FEED_MAX_ITEMS)"
        )
    return parsed


def items(parsed: Any) -> Iterator[Entry]:
    """The feed's items as plain dicts (see ``Entry``), one at a time (each copy is dropped once read)."""
    return (dict(entry) for entry in parsed.entries)


def read_items(parsed: Any, read_item: Callable[[Entry], ParsedItem], *, format: str) -> ParsedFeed:
    """Every entry read by ``read_item`` (a ``ValueError`` is that item's problem), as one feed or none."""
    read: list[ParsedItem] = []
    problems: list[str] = []
    for index, entry in enumerate(items(parsed), start=1):
        try:
            read.append(read_item(entry))
        except ValueError as exc:
            problems.append(f"item '{label(entry, index)}': {exc}")
    return finish(title=parsed.feed.get("title", ""), items=read, problems=problems, format=format)


def enclosures(entry: Entry) -> list[dict[str, Any]]:
    """The item's ``<enclosure>`` elements: feedparser lists them among its links, with ``rel`` "enclosure"."""
    # dict.get: feedparser's own get() looks up key aliases first, several times slower per call.
    return [dict(link) for link in entry.get("links") or () if dict.get(link, "rel") == "enclosure"]


def label(entry: Entry, index: int) -> str:
    """How a problem names an item: its title, else its id, else its place."""
    return quoted(entry.get("title") or entry.get("id") or f"item {index}")


class Enclosure(NamedTuple):
    """An item's enclosure, checked; what it holds as far as its media type and file name tell."""

    url: str
    size_bytes: int
    media_type: str  # as the feed wrote it, cut to the column's size
    package: str  # "disk", "ova" or "xvm2"
    disk_format: str  # "" for a package, or where type and name do not name one format


def media_kind(media_type: str) -> str:
    """A media type without parameters, lowercase: what the tables above are keyed by."""
    return media_type.partition(";")[0].strip().lower()


def file_suffix(url: str) -> str:
    """The last extension of the URL's file name, lowercase ("" if none)."""
    name = url.partition("#")[0].partition("?")[0].rpartition("/")[2].lower()
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def package_of(kind: str, suffix: str) -> str:
    """What a URL delivers: "xvm2" or "ova" (a package), else "disk"."""
    if kind in XVM2_TYPES or suffix == ".xvm2":
        return "xvm2"
    if kind in OVA_TYPES or suffix == ".ova":
        return "ova"
    return "disk"


def disk_format_of(kind: str, suffix: str) -> str:
    """The disk format the type or file name names unambiguously, else "" (the bytes decide)."""
    by_type = DISK_TYPES.get(kind, "")
    by_suffix = DISK_SUFFIXES.get(suffix, "")
    if by_type and by_suffix and by_type != by_suffix:
        return ""  # they disagree: neither is trusted
    return by_type or by_suffix


def enclosure(entry: Entry) -> Enclosure:
    """The item's one enclosure, its URL and length checked, or ``ValueError`` saying what is wrong."""
    found_all = enclosures(entry)
    if not found_all:
        raise ValueError("no <enclosure> (the image URL)")
    if len(found_all) > 1:
        raise ValueError("more than one <enclosure>")
    found = found_all[0]
    url = checked_url(str(found.get("href", "")), what="enclosure URL")
    size_bytes = positive_int(str(found.get("length", "")), "enclosure length", maximum=MAX_IMAGE_BYTES)
    media_type = str(found.get("type", ""))[:MAX_MEDIA_TYPE_CHARS]
    kind, suffix = media_kind(media_type), file_suffix(url)
    package = package_of(kind, suffix)
    disk_format = disk_format_of(kind, suffix) if package == "disk" else ""
    return Enclosure(url, size_bytes, media_type, package, disk_format)


def published(entry: Entry, *, lenient: bool = False) -> datetime | None:
    """The item's ``<pubDate>`` in UTC, or None if it has none or it is no date.

    Strict (the default): RFC 822 or ISO 8601 only, for dialects whose versions are told apart by
    it. ``lenient``: whatever feedparser made of it, which reads junk as some date too ("2011-13-45"
    as 2012-01-01): good enough to sort by, never to tell versions apart.
    """
    if not lenient:
        return parse_moment(str(entry.get("published", "")))
    stamp = entry.get("published_parsed")
    try:
        return datetime(*stamp[:6]).replace(tzinfo=UTC) if stamp else None
    except (TypeError, ValueError):
        return None

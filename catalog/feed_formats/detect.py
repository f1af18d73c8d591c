"""Which dialect a feed's bytes are, from the bytes alone (a server's Content-Type proves nothing).

- A JSON document (its first character ``{`` or ``[``) is simplestreams; ``simplestreams`` then
  checks its ``format`` (``index:1.0`` or ``products:1.0``).
- Anything else is read as XML by feedparser, once, and must be RSS. Then, in this order:
  our namespace declared -> ``ours``; a ``<uuid>`` on the channel or an item, and an ``.xvm2``
  enclosure -> ``archipel``; any ``<enclosure>`` -> ``plain``. An RSS feed with none of these is
  refused, saying what it lacks.

The first rule that matches decides the whole feed; its items are then read by that dialect's
rules only, so an item that does not fit is a problem of the feed, not read another way.
"""

from __future__ import annotations

from typing import Any

from catalog import vmcast
from catalog.feed_formats import rss
from catalog.feed_formats.common import FeedError
from catalog.feed_formats.ours import our_prefix

OURS = "ours"
ARCHIPEL = "archipel"
PLAIN = "plain"

_BLANK = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"


def looks_like_json(data: bytes) -> bool:
    """Whether the document starts as JSON does (an XML feed starts with ``<``)."""
    start = data[:4096].lstrip(_BLANK)
    if start.startswith(_UTF8_BOM):
        start = start[len(_UTF8_BOM) :].lstrip(_BLANK)
    return start[:1] in (b"{", b"[")


def _is_xvm2(found: dict[str, Any]) -> bool:
    url, media_type = str(found.get("href", "")), str(found.get("type", ""))
    return rss.package_of(rss.media_kind(media_type), rss.file_suffix(url)) == "xvm2"


def rss_dialect(parsed: Any) -> str:
    """``OURS``, ``ARCHIPEL`` or ``PLAIN`` for feedparser's reading of an RSS feed, else ``FeedError``."""
    if our_prefix(parsed.get("namespaces", {})):
        return OURS
    entries = parsed.entries
    has_uuid = bool(parsed.feed.get("uuid")) or any(dict.get(entry, "uuid") for entry in entries)
    if has_uuid and any(_is_xvm2(found) for entry in entries for found in rss.enclosures(entry)):
        return ARCHIPEL
    if any(rss.enclosures(entry) for entry in entries):
        return PLAIN
    raise FeedError(
        f"the feed does not use the VMcast namespace {vmcast.NAMESPACE} and none of its {len(entries)} "
        f"item{'s' if len(entries) != 1 else ''} has an <enclosure> (the image): it is RSS, but no VMcast "
        "the portal reads (ours, Archipel's or a plain one)"
    )

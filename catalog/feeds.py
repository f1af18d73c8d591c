"""Reading a feed: bytes in (already fetched by catalog.fetch), validated appliance versions out.

``parse_feed`` tells the dialect from the bytes (``catalog.feed_formats.detect``) and hands them to
that dialect's reader: our VMcast namespace, Archipel's VMcasts, plain (Enomaly-style) VMcasts, or
simplestreams. A feed is all or nothing: if any item is unusable, or the feed lists more items
than one feed may (``PORTAL_FEED_MAX_ITEMS``), the import fails and names the problems, so a
half-read feed never changes the catalog. Everything quoted from the feed in those problems is cut
short (a tenant reads them, and one feed must not fill a page with them) and URLs in them redacted.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from catalog.feed_formats import archipel, detect, ours, plain, rss, simplestreams
from catalog.feed_formats.common import (
    IDENTIFIER_RE,
    MAX_DESCRIPTION_CHARS,
    MAX_PROBLEMS_LISTED,
    MAX_QUOTED_CHARS,
    SHA256_RE,
    SUPPORTED_ARCHES,
    SUPPORTED_FORMATS,
    FeedError,
    ParsedFeed,
    ParsedItem,
    problem_list,
)

_RSS_READERS = {detect.OURS: ours.parse, detect.ARCHIPEL: archipel.parse, detect.PLAIN: plain.parse}


def parse_feed(
    data: bytes,
    *,
    url: str,
    fetch_more: Callable[[str], bytes] | None = None,
    max_items: int | None = None,
) -> ParsedFeed:
    """The feed's items, or ``FeedError``; at most ``max_items`` (default ``PORTAL_FEED_MAX_ITEMS``).

    ``url`` is where ``data`` came from: a simplestreams file names its images relative to it.
    ``fetch_more(url)`` returns the bytes of another file of the same stream (a simplestreams index
    names its products files); it is called at most ``simplestreams.MAX_PRODUCTS_FILES`` times, each
    answer must be under ``PORTAL_FEED_MAX_BYTES``, and its ``FetchError`` becomes a ``FeedError``.
    Without it an index is refused (a products file, or any RSS dialect, needs none).
    """
    max_items = settings.FEED_MAX_ITEMS if max_items is None else max_items
    if detect.looks_like_json(data):
        return simplestreams.parse(data, url=url, fetch_more=fetch_more, max_items=max_items)
    parsed = rss.read(data, max_items=max_items)
    return _RSS_READERS[detect.rss_dialect(parsed)](parsed)


def parse_vmcast(data: bytes, *, max_items: int | None = None) -> ParsedFeed:
    """``parse_feed`` for callers that have no URL: every RSS dialect (simplestreams needs the URL)."""
    return parse_feed(data, url="", max_items=max_items)


__all__ = [
    "IDENTIFIER_RE",
    "MAX_DESCRIPTION_CHARS",
    "MAX_PROBLEMS_LISTED",
    "MAX_QUOTED_CHARS",
    "SHA256_RE",
    "SUPPORTED_ARCHES",
    "SUPPORTED_FORMATS",
    "FeedError",
    "ParsedFeed",
    "ParsedItem",
    "parse_feed",
    "parse_vmcast",
    "problem_list",
]

"""Archipel's VMcasts: RSS whose channel and items carry an un-namespaced ``<uuid>``, and whose
enclosures are ``.xvm2`` packages (``application/enomalism2-xvm2``: a tar of the domain's XML
and its disks, taken apart when first downloaded).

Archipel's publisher writes each ``<pubDate>`` as Python's ``str(datetime)`` in the publisher's
local time ("2011-05-09 16:41:27.403727"), rarely RFC 822; both are read, a date without a zone as
UTC. The title names the appliance (its identifier is the title as a slug, shared by all its
versions) and the date tells its versions apart: the version is the date as text, to the
microsecond. The ``<uuid>`` only marks the dialect.

The feed gives no checksum (the first download's sha256 is pinned), no disk format (the package
says) and no sizing (the portal's default until the package gives it).
"""

from __future__ import annotations

from typing import Any

from catalog.feed_formats import rss
from catalog.feed_formats.common import (
    MAX_DESCRIPTION_CHARS,
    MAX_TITLE_CHARS,
    ParsedFeed,
    ParsedItem,
    checked_identifier,
    cut,
    moment_version,
    quoted,
    slug,
)

XVM2_TYPE = "application/enomalism2-xvm2"


def parse(parsed: Any) -> ParsedFeed:
    return rss.read_items(parsed, _item, format="archipel")


def _item(entry: rss.Entry) -> ParsedItem:
    enclosure = rss.enclosure(entry)
    if enclosure.package != "xvm2":
        raise ValueError(f"enclosure of type '{quoted(enclosure.media_type)}' is not an Archipel package ({XVM2_TYPE})")
    title = " ".join(str(entry.get("title") or "").split())[:MAX_TITLE_CHARS]
    appliance = slug(title)
    if not appliance:
        raise ValueError("no <title> with letters or digits to name the appliance by")
    published = rss.published(entry)
    if published is None:
        shown = quoted(entry.get("published", ""))
        raise ValueError(f"<pubDate> '{shown}' is not a date (it tells an appliance's versions apart)")
    return ParsedItem(
        appliance=checked_identifier(appliance),
        title=title,
        description=cut(entry.get("summary", ""), MAX_DESCRIPTION_CHARS),
        role="",
        version=moment_version(published),
        url=enclosure.url,
        size_bytes=enclosure.size_bytes,
        media_type=enclosure.media_type,
        sha256="",
        disk_format="",
        arch="x86_64",
        min_ram_mib=128,
        min_vcpus=1,
        service_port=None,
        published=published,
        checksum_source="pinned",
        package="xvm2",
    )

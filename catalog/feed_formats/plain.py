"""Plain (Enomaly-style) VMcasts: RSS 2.0 whose items carry nothing but a title, a date and an ``<enclosure>``.

Such a feed names no appliance and no version, so both are read from the title: items whose titles
are equal once a version number is taken out are versions of one appliance ("CentOS 5.5 LAMP 1.2"
and "CentOS 5.5 LAMP 1.3" are versions 1.2 and 1.3 of ``centos-5.5-lamp``). The version number is
the title's last free-standing number (``1.2``, ``v2``, ``10.04.1``; not the 64 in ``x86_64``). A
title without one is an appliance of its own whose version is its ``<pubDate>``.

Nothing here is verified against the feed: it gives no checksum, so the first download's sha256 is
pinned (``checksum_source`` "pinned") and later downloads must match it. The disk format is taken
from the enclosure's type or file name only where that names one format (``rss.Enclosure``);
otherwise the image's own bytes decide when it is downloaded. An enclosure of an OVA or an
``.xvm2`` is a package, taken apart at download. Sizing is the portal's default, and the
architecture x86_64 (the only one the portal runs; such feeds do not say).
"""

from __future__ import annotations

import re
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

# A version number standing on its own: after the start, a blank, "(", "[" or "-", and before the
# end, a blank, ")", "]", "," or "-". Bounded, so no title makes the search slow.
_VERSION_NUMBER = re.compile(r"(?<![^\s(\[-])[vV]?(\d{1,20}(?:\.\d{1,20}){0,5})(?![^\s)\],-])")
_LEFTOVER = re.compile(r"\(\s*\)|\[\s*\]|\s+")


def split_title(title: str) -> tuple[str, str]:
    """``(name, version)`` as a plain VMcast's title gives them; version "" when it has no number.

    >>> split_title("CentOS 5.5 LAMP v1.2")
    ('CentOS 5.5 LAMP', '1.2')
    """
    title = title[:MAX_TITLE_CHARS]
    numbers = list(_VERSION_NUMBER.finditer(title))
    if not numbers:
        return " ".join(title.split()), ""
    last = numbers[-1]
    joined = f"{title[: last.start()].rstrip(' -_')} {title[last.end() :].lstrip(' -_,')}"
    return _LEFTOVER.sub(" ", joined).strip(" -_,"), last.group(1)


def parse(parsed: Any) -> ParsedFeed:
    return rss.read_items(parsed, _item, format="vmcast")


def _item(entry: rss.Entry) -> ParsedItem:
    enclosure = rss.enclosure(entry)
    title = str(entry.get("title") or "")
    if not title.strip():
        raise ValueError("no <title> (a plain VMcast names its appliance and version there)")
    name, version = split_title(title)
    appliance = slug(name)
    if not appliance:
        raise ValueError(f"title '{quoted(title)}' has no letters or digits besides a version to name the appliance by")
    # The date is read strictly only where it becomes the version; elsewhere it only orders versions.
    published = rss.published(entry, lenient=bool(version))
    if not version:
        if published is None:
            shown = quoted(entry.get("published", ""))
            raise ValueError(
                f"no version number in its title, and no <pubDate> to tell versions apart"
                f"{f' (a date was expected, not {shown!r})' if shown else ''}"
            )
        version = moment_version(published)
    return ParsedItem(
        appliance=checked_identifier(appliance),
        title=name,
        description=cut(entry.get("summary", ""), MAX_DESCRIPTION_CHARS),
        role="",
        version=version,
        url=enclosure.url,
        size_bytes=enclosure.size_bytes,
        media_type=enclosure.media_type,
        sha256="",
        disk_format=enclosure.disk_format,
        arch="x86_64",
        min_ram_mib=128,
        min_vcpus=1,
        service_port=None,
        published=published,
        checksum_source="pinned",
        package=enclosure.package,
    )

"""Our own VMcast dialect: RSS 2.0 whose items declare everything in ``catalog.vmcast.NAMESPACE``.

Each item names its appliance and version, the image's sha256 (verified at download) and disk
format, and optionally its package (``vmc:package``: ``disk``, the default, ``ova`` or ``xvm2``),
architecture, sizing, role and service port. See ``catalog.vmcast`` for the writer.
"""

from __future__ import annotations

from typing import Any

from catalog import vmcast
from catalog.feed_formats import rss
from catalog.feed_formats.common import (
    MAX_DESCRIPTION_CHARS,
    MAX_IMAGE_BYTES,
    MAX_TITLE_CHARS,
    MAX_VERSION_CHARS,
    PACKAGES,
    SUPPORTED_ARCHES,
    SUPPORTED_FORMATS,
    FeedError,
    ParsedFeed,
    ParsedItem,
    checked_identifier,
    checked_sha256,
    cut,
    positive_int,
    quoted,
)
from provisioning.name_rules import TIER_NAME


def our_prefix(namespaces: dict[str, str]) -> str:
    """The prefix this document chose for our namespace, or "" if it does not use it."""
    # feedparser names unknown-namespace elements after the prefix the document chose, so
    # look the prefix up by namespace URI instead of assuming "vmc".
    for prefix, uri in namespaces.items():
        if prefix and str(uri).rstrip("/") == vmcast.NAMESPACE:
            return prefix
    return ""


def parse(parsed: Any) -> ParsedFeed:
    prefix = our_prefix(parsed.get("namespaces", {}))
    if not prefix:
        raise FeedError(f"the feed does not use the VMcast namespace {vmcast.NAMESPACE}")
    return rss.read_items(parsed, lambda entry: _item(entry, prefix), format="vmcast")


def _field(entry: rss.Entry, prefix: str, name: str, *, required: bool = True) -> str:
    value = str(entry.get(f"{prefix}_{name}", "")).strip()
    if required and not value:
        raise ValueError(f"missing <{prefix}:{name}>")
    return value


def _item(entry: rss.Entry, prefix: str) -> ParsedItem:
    enclosure = rss.enclosure(entry)
    appliance = checked_identifier(_field(entry, prefix, "appliance").lower())
    sha256 = checked_sha256(_field(entry, prefix, "sha256"))
    package = _field(entry, prefix, "package", required=False).lower() or "disk"
    if package not in PACKAGES:
        raise ValueError(f"package '{quoted(package)}' is not one of {', '.join(PACKAGES)}")
    # A package (OVA, xvm2) says itself what disk it holds; a bare disk image must say its format.
    disk_format = _field(entry, prefix, "format", required=package == "disk").lower()
    if disk_format and disk_format not in SUPPORTED_FORMATS:
        raise ValueError(f"disk format '{quoted(disk_format)}' is not one of {', '.join(SUPPORTED_FORMATS)}")
    arch = _field(entry, prefix, "arch", required=False) or "x86_64"
    if arch not in SUPPORTED_ARCHES:
        raise ValueError(f"architecture '{quoted(arch)}' is not supported")
    # The role names the tier of the appliance's one-click launch (and of its instances' names): a
    # role that is no tier name would make every such launch fail, so the item is refused here.
    role = _field(entry, prefix, "role", required=False).lower()
    if role and not TIER_NAME.pattern.fullmatch(role):
        raise ValueError(f"role '{quoted(role)}' is not a tier name: {TIER_NAME.rule}")
    port_text = _field(entry, prefix, "port", required=False)
    virtual_text = _field(entry, prefix, "virtualsize", required=False)
    return ParsedItem(
        appliance=appliance,
        title=(entry.get("title") or appliance)[:MAX_TITLE_CHARS],
        description=cut(entry.get("summary", ""), MAX_DESCRIPTION_CHARS),
        role=role,
        version=_field(entry, prefix, "version")[:MAX_VERSION_CHARS],
        url=enclosure.url,
        size_bytes=enclosure.size_bytes,
        media_type=enclosure.media_type,
        sha256=sha256,
        disk_format=disk_format,
        arch=arch,
        min_ram_mib=positive_int(_field(entry, prefix, "minram", required=False) or "128", "minram", maximum=2**20),
        min_vcpus=positive_int(_field(entry, prefix, "mincpu", required=False) or "1", "mincpu", maximum=256),
        service_port=positive_int(port_text, "port", maximum=65535) if port_text else None,
        published=rss.published(entry, lenient=True),
        virtual_size_bytes=positive_int(virtual_text, "virtualsize", maximum=MAX_IMAGE_BYTES) if virtual_text else None,
        checksum_source="feed",
        package=package,
    )

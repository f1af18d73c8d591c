"""The VMcast feed format the portal reads and the demo builder writes.

A VMcast is an RSS 2.0 feed with one ``<item>`` per appliance version. The image itself is
the item's ``<enclosure url length type>``; what RSS has no word for (checksum, disk format,
architecture, sizing, the service port) lives in our own XML namespace.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

NAMESPACE = "https://stackportal.dev/ns/vmcast/1"
PREFIX = "vmc"

# Element names inside NAMESPACE, one per ApplianceVersion attribute.
# "virtualsize" (the disk's size in bytes, what launches claim before the image is downloaded) is optional.
FIELDS = ("appliance", "version", "sha256", "format", "arch", "minram", "mincpu", "port", "role", "virtualsize")

IMAGE_MEDIA_TYPES = {
    "qcow2": "application/x-qemu-disk",
    "raw": "application/octet-stream",
}


@dataclass(frozen=True)
class FeedItem:
    """One appliance version as published in a VMcast."""

    appliance: str  # stable identifier, e.g. "demo-web"
    title: str
    description: str
    version: str
    url: str
    size_bytes: int
    sha256: str
    disk_format: str  # "qcow2" or "raw"
    arch: str = "x86_64"
    min_ram_mib: int = 128
    min_vcpus: int = 1
    service_port: int = 80
    role: str = "web"
    published: datetime | None = None
    virtual_size_bytes: int | None = None


def render_feed(*, title: str, link: str, description: str, items: Iterable[FeedItem]) -> bytes:
    """Serialise a VMcast as RSS 2.0 bytes (UTF-8, with XML declaration)."""
    ET.register_namespace(PREFIX, NAMESPACE)
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = title
    ET.SubElement(channel, "link").text = link
    ET.SubElement(channel, "description").text = description
    for item in items:
        node = ET.SubElement(channel, "item")
        ET.SubElement(node, "title").text = item.title
        ET.SubElement(node, "description").text = item.description
        ET.SubElement(node, "guid", {"isPermaLink": "false"}).text = f"{item.appliance}:{item.version}"
        published = item.published or datetime.now(UTC)
        ET.SubElement(node, "pubDate").text = format_datetime(published)
        ET.SubElement(
            node,
            "enclosure",
            {
                "url": item.url,
                "length": str(item.size_bytes),
                "type": IMAGE_MEDIA_TYPES.get(item.disk_format, "application/octet-stream"),
            },
        )
        values = {
            "appliance": item.appliance,
            "version": item.version,
            "sha256": item.sha256,
            "format": item.disk_format,
            "arch": item.arch,
            "minram": str(item.min_ram_mib),
            "mincpu": str(item.min_vcpus),
            "port": str(item.service_port),
            "role": item.role,
        }
        if item.virtual_size_bytes:
            values["virtualsize"] = str(item.virtual_size_bytes)
        for field in FIELDS:
            if field in values:
                ET.SubElement(node, f"{{{NAMESPACE}}}{field}").text = values[field]
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)

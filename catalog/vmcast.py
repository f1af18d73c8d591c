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
# "package" (what the enclosure is: "disk", the default, "ova" or "xvm2") is written only when not "disk",
# and "format" (the disk format) may be left out for a package, which says itself what disk it holds.
FIELDS = (
    "appliance",
    "version",
    "sha256",
    "format",
    "package",
    "arch",
    "minram",
    "mincpu",
    "port",
    "role",
    "virtualsize",
)

IMAGE_MEDIA_TYPES = {
    "qcow2": "application/x-qemu-disk",
    "raw": "application/octet-stream",
    "vmdk": "application/x-vmdk",
    "vdi": "application/x-virtualbox-vdi",
    "vhdx": "application/x-vhdx",
}
PACKAGE_MEDIA_TYPES = {"ova": "application/x-ova", "xvm2": "application/enomalism2-xvm2"}


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
    disk_format: str  # "qcow2", "raw", "vmdk", "vdi" or "vhdx"; "" for a package that does not say
    arch: str = "x86_64"
    min_ram_mib: int = 128
    min_vcpus: int = 1
    service_port: int | None = 80  # None: the appliance serves no port (the element is left out)
    role: str = "web"
    published: datetime | None = None
    virtual_size_bytes: int | None = None
    package: str = "disk"  # "disk", "ova" or "xvm2"


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
                "type": PACKAGE_MEDIA_TYPES.get(item.package)
                or IMAGE_MEDIA_TYPES.get(item.disk_format, "application/octet-stream"),
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
            "role": item.role,
        }
        if item.service_port is not None:
            values["port"] = str(item.service_port)
        if item.virtual_size_bytes:
            values["virtualsize"] = str(item.virtual_size_bytes)
        if item.package != "disk":
            values["package"] = item.package
        for field in FIELDS:
            if values.get(field):
                ET.SubElement(node, f"{{{NAMESPACE}}}{field}").text = values[field]
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)

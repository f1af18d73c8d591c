"""Step 5: the VMcast that publishes the images, written next to them as ``feed.xml``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from catalog.demo_appliances.appliances import DEMO_PROBE, MIN_RAM_MIB, DemoAppliance
from catalog.demo_appliances.files import file_sha256, write_if_changed
from catalog.demo_appliances.manifest import Manifest
from catalog.vmcast import FeedItem, render_feed

FEED_NAME = "feed.xml"


def feed_item(appliance: DemoAppliance, image: Path, entry: dict[str, str], base_url: str) -> FeedItem:
    return FeedItem(
        appliance=appliance.appliance,
        title=appliance.title,
        description=appliance.description,
        version=entry["version"],
        url=f"{base_url.rstrip('/')}/{appliance.filename}",
        size_bytes=image.stat().st_size,
        sha256=file_sha256(image),
        disk_format="qcow2",
        arch="x86_64",
        min_ram_mib=MIN_RAM_MIB,
        min_vcpus=1,
        service_port=appliance.port,
        role=appliance.role,
        # The build time rather than now, so rerunning the builder leaves the feed byte-identical.
        published=datetime.fromisoformat(entry["built_at"]),
        virtual_size_bytes=qcow2_virtual_size(image),
    )


def qcow2_virtual_size(image: Path) -> int:
    """The disk size in the header of a qcow2 this builder made (big-endian, 8 bytes at offset 24).

    Read directly: the file is our own. Images from feeds are measured with qemu-img, never so.
    """
    with image.open("rb") as handle:
        header = handle.read(32)
    if header[:4] != b"QFI\xfb":
        raise ValueError(f"{image} is not a qcow2 image")
    return int.from_bytes(header[24:32], "big")


def write_feed(out_dir: Path, manifest: Manifest, base_url: str, appliances: tuple[DemoAppliance, ...]) -> Path:
    """Write (or leave, if unchanged) ``OUT_DIR/feed.xml`` naming the images of ``appliances`` under ``base_url``.

    The feed lists what this build was asked for, not what the manifest holds: a probe built into
    the same folder earlier must not reach a catalog that did not ask for it.
    """
    items = [
        feed_item(appliance, out_dir / appliance.filename, manifest[appliance.appliance], base_url)
        for appliance in appliances
    ]
    description = "Three small appliances (web, app, db) for trying out stacks"
    if DEMO_PROBE in appliances:
        description += ", and a network probe for tests"
    content = render_feed(title="Demo appliances", link=base_url, description=f"{description}.", items=items)
    feed = out_dir / FEED_NAME
    write_if_changed(feed, content)
    return feed

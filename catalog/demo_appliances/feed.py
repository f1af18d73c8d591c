"""Step 5: the VMcast that publishes the images, written next to them as ``feed.xml``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from catalog.demo_appliances.appliances import DEMO_APPLIANCES, MIN_RAM_MIB, DemoAppliance
from catalog.demo_appliances.files import file_sha256, write_if_changed
from catalog.demo_appliances.manifest import Manifest
from catalog.vmcast import FeedItem, render_feed

FEED_NAME = "feed.xml"


def feed_item(appliance: DemoAppliance, image: Path, entry: dict[str, str], base_url: str) -> FeedItem:
    return FeedItem(
        appliance=appliance.appliance,
        title=appliance.title,
        description=(
            f"Minimal Linux guest serving an HTTP page on port {appliance.port} "
            f"as the {appliance.role} tier of the demo stack."
        ),
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
    )


def write_feed(out_dir: Path, manifest: Manifest, base_url: str) -> Path:
    """Write (or leave, if unchanged) ``OUT_DIR/feed.xml`` naming every demo image under ``base_url``."""
    items = [
        feed_item(appliance, out_dir / appliance.filename, manifest[appliance.appliance], base_url)
        for appliance in DEMO_APPLIANCES
    ]
    content = render_feed(
        title="Demo appliances",
        link=base_url,
        description="Three small appliances (web, app, db) for trying out stacks.",
        items=items,
    )
    feed = out_dir / FEED_NAME
    write_if_changed(feed, content)
    return feed

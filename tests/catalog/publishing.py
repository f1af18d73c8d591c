"""Publishing test appliances: an image and a VMcast naming it, served by the loopback HTTP server."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from catalog import vmcast


def make_qcow2(path: Path, size: str = "16M") -> Path:
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), size], check=True, capture_output=True)
    return path


def compressed_bomb(folder: Path, size_mib: int = 64) -> Path:
    """A qcow2 of ``size_mib`` MiB of non-zero data, stored compressed in a few hundred KiB."""
    raw = folder / "bomb.raw"
    raw.write_bytes(b"\x01" * size_mib * 1024 * 1024)
    bomb = folder / "bomb.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(bomb)], check=True, capture_output=True
    )
    raw.unlink()
    return bomb


def publish(
    server,
    *,
    name: str = "web.qcow2",
    size: str = "16M",
    corrupt_sha: bool = False,
    appliance: str = "demo-web",
    version: str = "1.0",
    feed_name: str = "feed.xml",
    disk_format: str = "qcow2",
    image_url: str | None = None,
    make_image: bool = True,
    virtual_size_bytes: int | None = None,
) -> str:
    """Put a fresh qcow2 image (unless ``make_image`` is false) and a feed naming it on the server.

    Returns the feed's URL. ``disk_format`` is what the feed declares, whatever the image is, and
    ``virtual_size_bytes`` the disk size it declares (none unless given).
    """
    image = server.root / name
    if make_image:
        make_qcow2(image, size)
    digest = "0" * 64 if corrupt_sha else hashlib.sha256(image.read_bytes()).hexdigest()
    item = vmcast.FeedItem(
        appliance=appliance,
        title=appliance.title(),
        description="",
        version=version,
        url=image_url or f"{server.base_url}/{name}",
        size_bytes=image.stat().st_size,
        sha256=digest,
        disk_format=disk_format,
        virtual_size_bytes=virtual_size_bytes,
    )
    (server.root / feed_name).write_bytes(
        vmcast.render_feed(title="Test feed", link=server.base_url, description="", items=[item])
    )
    return f"{server.base_url}/{feed_name}"

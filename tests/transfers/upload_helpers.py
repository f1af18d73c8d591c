"""What the upload tests share: tus headers, a client's requests, small disk images, private folders."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from catalog.own_images import own_catalog
from tests.factories import ApplianceFactory, ApplianceVersionFactory

ENDPOINT = "/api/v1/uploads/"
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"


def use_private_folders(settings, tmp_path: Path) -> Path:
    """Uploads and the image cache in the test's own folder, so nothing outlives it."""
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.IMAGE_CACHE_DIR = tmp_path / "images"
    return tmp_path


def metadata_header(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def create(client, *, project, length: int, appliance: str = "my-web", version: str = "1.0", **more: str):
    """POST a tus creation for ``project`` (an object or a raw id text); the response."""
    project_id = str(getattr(project, "pk", project))
    header = metadata_header(project=project_id, appliance=appliance, version=version, **more)
    return client.post(ENDPOINT, HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=header, **TUS)


def patch(client, url: str, body: bytes, *, offset: int, **extra: str):
    return client.generic(
        "PATCH", url, body, content_type=OFFSET_TYPE, HTTP_UPLOAD_OFFSET=str(offset), **{**TUS, **extra}
    )


def head(client, url: str):
    return client.head(url, **TUS)


def send_whole(client, url: str, data: bytes, *, chunk: int) -> None:
    """Send ``data`` in PATCHes of ``chunk`` bytes, each answered 204."""
    for offset in range(0, len(data), chunk):
        response = patch(client, url, data[offset : offset + chunk], offset=offset)
        assert response.status_code == 204, response.content


def qcow2_image(path: Path, *, size: str = "64M", backing: Path | None = None) -> bytes:
    """A real qcow2 (optionally naming a backing file), as bytes."""
    command = ["qemu-img", "create", "-f", "qcow2"]
    if backing is not None:
        command += ["-b", str(backing), "-F", "raw"]
    subprocess.run([*command, str(path), size], check=True, capture_output=True)
    return path.read_bytes()


def bootable_raw(size: int = 1024 * 1024) -> bytes:
    """A raw disk whose first sector ends with the boot signature (what a partition table or boot loader leaves)."""
    data = bytearray(size)
    data[510:512] = b"\x55\xaa"
    return bytes(data)


def own_version(project, *, appliance: str, version: str):
    """A version already in ``project``'s own catalog under that name."""
    feed = own_catalog(project)
    item = ApplianceFactory(feed=feed, identifier=appliance)
    return ApplianceVersionFactory(appliance=item, version=version, image_url="")

"""Disk formats by their magic: qcow2, raw, vmdk, vdi and vhdx taken and converted; others, and lies, refused."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
from pathlib import Path

import pytest

from catalog.image_cache import image_download
from catalog.images import ImageError, inspect_image, settle_disk_format, sniff_format
from catalog.models import CachedImage
from tests.catalog.package_builders import make_disk, qemu_img
from tests.factories import ApplianceVersionFactory, CachedImageFactory

GIB = 1024**3
MIB = 1024**2
TAKEN = ("qcow2", "raw", "vmdk", "vdi", "vhdx")


@pytest.fixture
def cache(settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    return settings.IMAGE_CACHE_DIR


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned_version(server, name: str, *, disk_format: str = ""):
    return ApplianceVersionFactory(
        image=None, checksum_source="pinned", disk_format=disk_format, image_url=f"{server.base_url}/{name}"
    )


def qcow2_info(path: str) -> dict:
    out = subprocess.run(["qemu-img", "info", "-f", "qcow2", "--output=json", path], capture_output=True, check=True)
    return json.loads(out.stdout)


def hostile_vmdk(folder: Path, *, extent: str) -> Path:
    """A vmdk header (KDMV) of capacity 0 whose embedded descriptor names ``extent`` as a flat extent.

    qemu-img then reads the extent, any file on the host, as the disk's contents.
    """
    sparse = make_disk(folder / "sparse.vmdk", "qcow2")
    qemu_img("convert", "-f", "qcow2", "-O", "vmdk", "-o", "subformat=monolithicSparse", sparse, folder / "s.vmdk")
    data = bytearray((folder / "s.vmdk").read_bytes())
    descriptor_sector, descriptor_sectors = struct.unpack_from("<QQ", data, 28)
    struct.pack_into("<Q", data, 12, 0)  # capacity 0: qemu reads the embedded descriptor instead
    text = (
        '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
        f'RW 8 FLAT "{extent}" 0\n'
    )
    start = descriptor_sector * 512
    data[start : start + descriptor_sectors * 512] = text.encode().ljust(descriptor_sectors * 512, b"\0")
    path = folder / "evil.vmdk"
    path.write_bytes(bytes(data))
    return path


# Sniffing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("disk_format", TAKEN)
def test_each_format_made_by_qemu_img_is_sniffed_by_its_magic(tmp_path, disk_format):
    disk = make_disk(tmp_path / f"disk.{disk_format}", disk_format)
    assert sniff_format(disk) == disk_format
    assert settle_disk_format(disk, declared="") == disk_format


def test_vdi_needs_both_its_text_and_its_signature(tmp_path):
    vdi = make_disk(tmp_path / "disk.vdi", "vdi").read_bytes()
    signature_only = tmp_path / "sig"
    signature_only.write_bytes(bytes(0x40) + vdi[0x40:])
    text_only = tmp_path / "text"
    text_only.write_bytes(vdi[:0x40] + b"\0\0\0\0" + vdi[0x44:])
    assert sniff_format(signature_only) == "raw"
    assert sniff_format(text_only) == "raw"


@pytest.mark.parametrize("disk_format", ["qed", "vpc"])
def test_qed_and_vpc_are_refused_as_unsupported(tmp_path, disk_format):
    disk = tmp_path / f"disk.{disk_format}"
    qemu_img("create", "-f", disk_format, disk, "16M")
    with pytest.raises(ImageError, match=f"the image is a {disk_format} image; the portal takes qcow2, raw"):
        settle_disk_format(disk, declared="")
    with pytest.raises(ImageError, match=f"is a {disk_format} image"):
        inspect_image(disk, declared_format=disk_format, max_virtual_bytes=GIB, max_converted_bytes=GIB)


@pytest.mark.parametrize(("made", "declared"), [("vhdx", "vdi"), ("vdi", "vhdx"), ("qcow2", "vmdk"), ("vmdk", "raw")])
def test_a_declared_format_must_agree_with_the_magic(tmp_path, made, declared):
    disk = make_disk(tmp_path / "disk", made)
    with pytest.raises(ImageError, match=f"the feed says the image is {declared}, but its header says {made}"):
        settle_disk_format(disk, declared=declared)


def test_a_vmdk_naming_a_host_file_as_its_extent_is_refused(tmp_path):
    evil = hostile_vmdk(tmp_path, extent="/etc/hostname")
    assert sniff_format(evil) == "vmdk"
    with pytest.raises(ImageError, match="'monolithicFlat' kind"):
        inspect_image(evil, declared_format="vmdk", max_virtual_bytes=GIB, max_converted_bytes=GIB)


def test_a_vmdk_descriptor_file_is_only_text_to_the_portal(tmp_path):
    descriptor = tmp_path / "flat.vmdk"
    qemu_img("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", descriptor, "1M")
    assert descriptor.read_bytes().startswith(b"# Disk DescriptorFile")
    assert sniff_format(descriptor) == "raw"  # never opened as vmdk, so its extents are never read
    with pytest.raises(ImageError, match="says the image is vmdk, but its header says raw"):
        settle_disk_format(descriptor, declared="vmdk")


# Through the image cache --------------------------------------------------------------------------------


@pytest.mark.parametrize("disk_format", ["vdi", "vhdx", "vmdk", "raw"])
def test_an_undeclared_format_takes_the_magics_and_is_converted_to_qcow2(cache, http_server, db, disk_format):
    disk = make_disk(http_server.root / "disk.img", disk_format)
    version = pinned_version(http_server, "disk.img")
    delivery = image_download(version=version)
    assert (delivery.status, delivery.error) == ("delivered", "")
    version.refresh_from_db()
    assert (version.image.sha256, version.image.source_format) == (sha256_of(disk), disk_format)
    info = qcow2_info(version.image.path)
    assert (info["format"], info["virtual-size"]) == ("qcow2", 16 * MIB)
    assert version.image.path.endswith(f"/{sha256_of(disk)}-{disk_format}.qcow2")


def test_a_feed_checksummed_version_of_undeclared_format_is_stored_under_its_magic(cache, http_server, db):
    disk = make_disk(http_server.root / "disk.img", "vhdx")
    undeclared = CachedImageFactory(sha256=sha256_of(disk), source_format="")
    version = ApplianceVersionFactory(
        image=undeclared, disk_format="", checksum_source="feed", image_url=f"{http_server.base_url}/disk.img"
    )
    assert image_download(version=version).status == "delivered"
    version.refresh_from_db()
    assert (version.image.sha256, version.image.source_format) == (sha256_of(disk), "vhdx")
    assert version.image.status == CachedImage.Status.READY
    assert version.image_state.status == "ready"


def test_a_declared_format_that_lies_fails_the_delivery(cache, http_server, db):
    make_disk(http_server.root / "disk.img", "vhdx")
    version = pinned_version(http_server, "disk.img", disk_format="vdi")
    delivery = image_download(version=version)
    assert delivery.status == "error"
    assert "the feed says the image is vdi, but its header says vhdx" in delivery.error
    assert [p.name for p in cache.iterdir()] == []


def test_a_hostile_vmdk_fails_the_delivery_without_reading_the_host_file(cache, http_server, db, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"host secret".ljust(4096, b"!"))
    evil = hostile_vmdk(tmp_path, extent=str(secret))
    (http_server.root / "evil.vmdk").write_bytes(evil.read_bytes())
    version = pinned_version(http_server, "evil.vmdk")
    delivery = image_download(version=version)
    assert delivery.status == "error"
    assert "single-file vmdk" in delivery.error
    assert [p.name for p in cache.iterdir()] == []
    assert not CachedImage.objects.filter(status=CachedImage.Status.READY).exists()

"""OVA packages: the manifest vouches for every file, one machine only, its streamOptimized disk converted."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from catalog.image_cache import image_download
from catalog.models import CachedImage
from catalog.packages import PackageError, scratch_folder, unpack_package
from catalog.packages.ovf import read_ovf
from catalog.packages.sizing import MAX_RAM_MIB, MAX_VCPUS
from tests.catalog.package_builders import make_disk, manifest, ova, ovf_xml, regular
from tests.factories import ApplianceVersionFactory

MIB = 1024**2


@pytest.fixture
def cache(settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    settings.IMAGE_CACHE_DIR.mkdir()
    return settings.IMAGE_CACHE_DIR


@pytest.fixture
def vmdk(tmp_path) -> Path:
    """A 16 MiB streamOptimized vmdk, as OVAs carry their disks (qemu-img convert -o subformat=streamOptimized)."""
    (tmp_path / "src").mkdir()
    return make_disk(tmp_path / "src" / "disk1.vmdk", "vmdk")


def files_under(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def refused(package: Path, cache: Path, match: str) -> None:
    with scratch_folder(cache) as scratch, pytest.raises(PackageError, match=match):
        unpack_package(package, package="ova", scratch=scratch, extract=True, max_bytes=2**33)
    assert files_under(cache) == set()


def ova_version(server, name: str):
    return ApplianceVersionFactory(
        image=None, checksum_source="pinned", package="ova", disk_format="", image_url=f"{server.base_url}/{name}"
    )


def image_format(path: str) -> str:
    info = subprocess.run(["qemu-img", "info", "-f", "qcow2", "--output=json", path], capture_output=True, check=True)
    return json.loads(info.stdout)["format"]


# The manifest --------------------------------------------------------------------------------------


def test_a_wrong_digest_in_the_manifest_is_refused(tmp_path, cache, vmdk):
    files = {"appliance.ovf": ovf_xml(), "disk1.vmdk": b"not the disk"}
    package = ova(tmp_path / "bad.ova", vmdk, manifest_text=manifest(files))
    refused(package, cache, match="'disk1.vmdk' does not match its SHA256 digest")


def test_a_tampered_descriptor_is_refused_by_its_digest(tmp_path, cache, vmdk):
    files = {"appliance.ovf": ovf_xml(vcpus=1), "disk1.vmdk": vmdk.read_bytes()}
    package = ova(tmp_path / "bad.ova", vmdk, descriptor=ovf_xml(vcpus=8), manifest_text=manifest(files))
    refused(package, cache, match="'appliance.ovf' does not match its SHA256 digest")


def test_a_file_the_manifest_does_not_list_is_refused(tmp_path, cache, vmdk):
    listed = {"appliance.ovf": ovf_xml(), "disk1.vmdk": vmdk.read_bytes()}
    package = ova(
        tmp_path / "extra.ova", vmdk, manifest_text=manifest(listed), extra=[regular("notes.txt", b"unlisted")]
    )
    refused(package, cache, match="no digest for 'notes.txt'")
    unlisted_disk = ova(tmp_path / "nodisk.ova", vmdk, manifest_text=manifest({"appliance.ovf": ovf_xml()}))
    refused(unlisted_disk, cache, match="no digest for 'disk1.vmdk'")


def test_a_manifest_after_the_files_or_a_second_one_is_refused(tmp_path, cache, vmdk):
    refused(ova(tmp_path / "late.ova", vmdk, order="ovf,disk,mf"), cache, match="manifest comes after its files")
    second = ova(tmp_path / "two.ova", vmdk, extra=[regular("second.mf", b"")], order="ovf,mf,extra,disk")
    refused(second, cache, match="more than one manifest")


@pytest.mark.parametrize("line", [b"MD5(disk1.vmdk)= 0123\n", b"SHA256(disk1.vmdk)= abc\n", b"garbage\n"])
def test_a_malformed_manifest_is_refused(tmp_path, cache, vmdk, line):
    refused(ova(tmp_path / "mf.ova", vmdk, manifest_text=line), cache, match="manifest")


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
def test_manifests_of_each_digest_are_checked_and_pass(tmp_path, cache, vmdk, algorithm):
    package = ova(tmp_path / "ok.ova", vmdk, algorithm=algorithm)
    with scratch_folder(cache) as scratch:
        unpacked = unpack_package(package, package="ova", scratch=scratch, extract=True, max_bytes=2**33)
        assert unpacked.disk.read_bytes() == vmdk.read_bytes()
        assert unpacked.disk_format == "vmdk"
    assert files_under(cache) == set()


# The descriptor -------------------------------------------------------------------------------------


def test_a_collection_of_several_machines_is_refused(tmp_path, cache, vmdk):
    package = ova(tmp_path / "stack.ova", vmdk, descriptor=ovf_xml(systems=3))
    refused(package, cache, match=r"describes 3 virtual machines \(a VirtualSystemCollection\)")


def test_the_descriptor_must_come_first(tmp_path, cache, vmdk):
    refused(ova(tmp_path / "late.ova", vmdk, order="disk,ovf,mf"), cache, match="starts with its .ovf descriptor")


@pytest.mark.parametrize(
    ("href", "said"),
    [
        ("http://127.0.0.1:9/disk1.vmdk", "not a file inside the package"),
        ("file:///etc/passwd", "not a file inside the package"),
        ("../disk1.vmdk", "climbs out"),
        ("other.vmdk", "does not hold 'other.vmdk'"),
    ],
)
def test_the_disk_file_must_be_a_member_of_the_package(tmp_path, cache, vmdk, href, said):
    refused(ova(tmp_path / "href.ova", vmdk, descriptor=ovf_xml(href=href)), cache, match=said)


def test_a_descriptor_with_a_doctype_is_refused(tmp_path, cache, vmdk):
    prologue = '<?xml version="1.0"?><!DOCTYPE Envelope [<!ENTITY leak SYSTEM "file:///etc/passwd">]>'
    refused(ova(tmp_path / "xxe.ova", vmdk, descriptor=ovf_xml(prologue=prologue)), cache, match="declares a DOCTYPE")


def test_a_disk_unlike_its_declared_format_is_refused(tmp_path, cache):
    qcow2 = make_disk(tmp_path / "disk.qcow2")
    refused(ova(tmp_path / "lie.ova", qcow2), cache, match="says the image is vmdk, but its header says qcow2")


@pytest.mark.parametrize(
    ("units", "memory", "ram_mib"),
    [
        ("byte * 2^20", 1024, 1024),
        ("byte*2^30", 2, 2048),
        ("MegaBytes", 768, 768),
        ("", 512, 512),
        ("byte", 3 * MIB + 1, 4),
        ("byte * 2^20", 10**9, MAX_RAM_MIB),
        ("furlongs", 512, None),
    ],
)
def test_memory_is_read_in_its_allocation_units_and_bounded(units, memory, ram_mib):
    assert read_ovf(ovf_xml(units=units, memory=memory)).sizing.ram_mib == ram_mib


def test_vcpus_are_bounded():
    assert read_ovf(ovf_xml(vcpus=4)).sizing.vcpus == 4
    assert read_ovf(ovf_xml(vcpus=100_000)).sizing.vcpus == MAX_VCPUS


# Through the image cache ------------------------------------------------------------------------------


def test_an_ova_is_taken_apart_converted_and_sizes_its_version(cache, vmdk, http_server, db):
    package = ova(http_server.root / "app.ova", vmdk)
    version = ova_version(http_server, "app.ova")
    delivery = image_download(version=version)
    assert (delivery.status, delivery.error) == ("delivered", "")
    version.refresh_from_db()
    image = version.image
    assert (image.sha256, image.source_format) == (hashlib.sha256(package.read_bytes()).hexdigest(), "ova")
    assert (image.status, image.virtual_size_bytes) == (CachedImage.Status.READY, 16 * MIB)
    assert image_format(image.path) == "qcow2"
    assert (version.min_vcpus, version.min_ram_mib) == (2, 1024)
    assert files_under(cache) == {Path(image.path).name}  # no scratch, no partial file left


def test_a_gzipped_disk_inside_an_ova_is_read(cache, vmdk, http_server, db):
    ova(http_server.root / "gz.ova", vmdk, gzip_disk=True)
    delivery = image_download(version=ova_version(http_server, "gz.ova"))
    assert (delivery.status, delivery.error) == ("delivered", "")


def test_a_refused_ova_fails_the_delivery_with_the_reason(cache, vmdk, http_server, db):
    ova(http_server.root / "stack.ova", vmdk, descriptor=ovf_xml(systems=2))
    version = ova_version(http_server, "stack.ova")
    delivery = image_download(version=version)
    assert delivery.status == "error"
    assert "describes 2 virtual machines" in delivery.error
    version.refresh_from_db()
    assert version.image is None
    assert (version.min_vcpus, version.min_ram_mib) == (1, 128)
    assert files_under(cache) == set()


def test_a_feed_declaring_the_disks_format_must_agree_with_it(cache, vmdk, http_server, db):
    ova(http_server.root / "app.ova", vmdk)
    version = ova_version(http_server, "app.ova")
    version.disk_format = "qcow2"
    version.save()
    delivery = image_download(version=version)
    assert delivery.status == "error"
    assert "the feed says the image is qcow2, but its header says vmdk" in delivery.error


def test_a_packages_sizing_raises_the_feeds_minimums_but_never_lowers_them(cache, vmdk, http_server, db):
    ova(http_server.root / "app.ova", vmdk)  # asks for 2 vCPUs and 1024 MiB
    version = ova_version(http_server, "app.ova")
    version.min_ram_mib = 4096
    version.save()
    assert image_download(version=version).status == "delivered"
    version.refresh_from_db()
    assert (version.min_vcpus, version.min_ram_mib) == (2, 4096)

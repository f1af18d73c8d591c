"""Hostile Archipel packages: nothing they name is written or read outside the import's scratch folder."""

from __future__ import annotations

import gzip
import hashlib
import logging
import secrets
import tarfile
from pathlib import Path

import pytest

from catalog.image_cache import image_download
from catalog.packages import PackageError, scratch_folder, unpack_package
from catalog.packages.archive import DISK_FILE_NAME
from catalog.packages.capped_gzip import CappedGunzip
from tests.catalog.package_builders import (
    QEMU_NAMESPACE,
    Entry,
    domain_xml,
    make_disk,
    regular,
    write_tar,
    xvm2,
    zeros,
)
from tests.factories import ApplianceVersionFactory

MIB = 1024**2


@pytest.fixture
def cache(settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    settings.IMAGE_CACHE_DIR.mkdir()
    return settings.IMAGE_CACHE_DIR


@pytest.fixture
def disk(tmp_path) -> Path:
    (tmp_path / "src").mkdir()
    return make_disk(tmp_path / "src" / "disk0.qcow2")


def files_under(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def unpack(package: Path, cache: Path, *, max_bytes: int = 2**33) -> tuple[set[str], Path | None]:
    """Take ``package`` apart in a scratch folder of ``cache``; what the folder held, and the disk's bytes' copy."""
    with scratch_folder(cache) as scratch:
        unpacked = unpack_package(package, package="xvm2", scratch=scratch, extract=True, max_bytes=max_bytes)
        held = files_under(scratch)
        kept = cache.parent / "kept-disk"
        kept.write_bytes(unpacked.disk.read_bytes())
    return held, kept


def drain(reader: CappedGunzip) -> None:
    while reader.read(MIB):
        pass


def refused(package: Path, cache: Path, match: str, **kwargs) -> None:
    outside_before = files_under(cache.parent)
    with pytest.raises(PackageError, match=match):
        unpack(package, cache, **kwargs)
    assert files_under(cache.parent) == outside_before  # nothing written anywhere, the scratch folder gone


# Names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/../x", "a/../../x", "./../../x", "disks/../../../../tmp/x"])
def test_a_member_climbing_out_with_dot_dot_is_refused(tmp_path, cache, disk, name):
    package = xvm2(tmp_path / "evil.xvm2", disk, extra=[regular(name, b"planted")])
    refused(package, cache, match="climbs out with '..'")
    assert not (tmp_path / "x").exists()
    assert not Path("/tmp/x").exists()


def test_an_absolute_member_name_lands_in_the_scratch_folder_not_at_its_path(tmp_path, cache, disk):
    target = f"/etc/portal-package-test-{secrets.token_hex(6)}.qcow2"
    package = xvm2(
        tmp_path / "abs.xvm2", disk, description=domain_xml(disk_path=target, disk_format="qcow2"), member=target
    )
    held, kept = unpack(package, cache)
    assert held == {DISK_FILE_NAME}  # the disk, under the portal's own name for it
    assert kept.read_bytes() == disk.read_bytes()
    assert not Path(target).exists()
    assert files_under(cache) == set()  # the scratch folder removed afterwards


def test_the_domains_disk_path_is_matched_by_base_name_only_never_opened(tmp_path, cache, disk):
    # The domain names /etc/passwd as its disk: only a member called "passwd" could be it.
    description = domain_xml(disk_path="/etc/passwd", disk_format="")
    refused(xvm2(tmp_path / "a.xvm2", disk, description=description), cache, match="no file named 'passwd'")
    own = xvm2(tmp_path / "b.xvm2", disk, description=description, member="/etc/passwd")
    _held, kept = unpack(own, cache)
    assert kept.read_bytes() == disk.read_bytes()  # the package's own member, not the host's file


def test_two_members_of_the_same_name_are_refused(tmp_path, cache, disk):
    package = xvm2(tmp_path / "twice.xvm2", disk, member="/disk0.qcow2", extra=[regular("disk0.qcow2", b"other")])
    refused(package, cache, match="two members named 'disk0.qcow2'")


def test_two_candidate_disks_in_different_folders_are_refused(tmp_path, cache, disk):
    package = xvm2(tmp_path / "two.xvm2", disk, member="/a/disk0.qcow2", extra=[regular("/b/disk0.qcow2.gz", b"x")])
    refused(package, cache, match="holds 2 files named 'disk0.qcow2'")


# Links, devices, fifos, sparse files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (Entry("/disk0.qcow2", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "is a symbolic link"),
        (Entry("/disk0.qcow2", kind=tarfile.LNKTYPE, linkname="/etc/passwd"), "is a hard link"),
        (Entry("/dev/evil", kind=tarfile.CHRTYPE), "is a device node"),
        (Entry("/dev/evil-block", kind=tarfile.BLKTYPE), "is a device node"),
        (Entry("/evil.fifo", kind=tarfile.FIFOTYPE), "is a fifo"),
        (Entry("/sparse", kind=tarfile.CONTTYPE, data=b"x"), "is a contiguous file"),
    ],
)
def test_links_devices_and_fifos_are_refused(tmp_path, cache, disk, entry, said):
    package = xvm2(tmp_path / "evil.xvm2", disk, first=[entry])
    refused(package, cache, match=said)


def test_a_symlink_followed_by_a_member_of_its_name_writes_nothing_through_it(tmp_path, cache, disk):
    canary = tmp_path / "canary"
    canary.write_bytes(b"untouched")
    package = xvm2(
        tmp_path / "evil.xvm2",
        disk,
        member="/disk0.qcow2",
        first=[Entry("/disk0.qcow2", kind=tarfile.SYMTYPE, linkname=str(canary))],
    )
    refused(package, cache, match="symbolic link")
    assert canary.read_bytes() == b"untouched"


def test_gnu_and_pax_sparse_members_are_refused(tmp_path, cache, disk):
    gnu = xvm2(tmp_path / "gnu.xvm2", disk, first=[Entry("/s", kind=tarfile.GNUTYPE_SPARSE, data=b"x")])
    refused(gnu, cache, match="sparse file")
    pax = xvm2(
        tmp_path / "pax.xvm2",
        disk,
        first=[Entry("/s", data=b"x", pax={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})],
    )
    refused(pax, cache, match="sparse file")


# The domain definition -------------------------------------------------------------------------------


def test_host_devices_emulator_and_qemu_arguments_are_left_out(tmp_path, cache, disk, http_server, caplog, db):
    description = domain_xml(
        devices=(
            "<emulator>/tmp/evil</emulator>"
            "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0' slot='2'/></source></hostdev>"
            "<filesystem type='mount'><source dir='/'/><target dir='host'/></filesystem>"
        ),
        extra=(
            f"<qemu:commandline xmlns:qemu='{QEMU_NAMESPACE}'>"
            "<qemu:arg value='-readconfig'/><qemu:arg value='/etc/passwd'/></qemu:commandline>"
        ),
    )
    xvm2(http_server.root / "app.xvm2", disk, description=description)
    version = ApplianceVersionFactory(
        image=None,
        checksum_source="pinned",
        package="xvm2",
        disk_format="",
        image_url=f"{http_server.base_url}/app.xvm2",
    )
    with caplog.at_level(logging.INFO, logger="catalog.image_cache"):
        delivery = image_download(version=version)
    assert (delivery.status, delivery.error) == ("delivered", "")
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(left_out) == 1
    for name in ("emulator", "hostdev", "filesystem", "qemu:commandline"):
        assert name in left_out[0]
    assert not Path("/tmp/evil").exists()
    version.refresh_from_db()
    assert (version.min_vcpus, version.min_ram_mib) == (2, 512)  # the sizing, and nothing else, taken
    assert files_under(cache) == {Path(version.image.path).name}


@pytest.mark.parametrize(
    "prologue",
    [
        '<!DOCTYPE domain [<!ENTITY leak SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE domain [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
        '<!DOCTYPE domain SYSTEM "http://127.0.0.1:9/domain.dtd">',
    ],
)
def test_a_domain_definition_with_a_doctype_is_refused(tmp_path, cache, disk, prologue):
    package = xvm2(tmp_path / "xxe.xvm2", disk, description=domain_xml(prologue=prologue))
    refused(package, cache, match="declares a DOCTYPE")


def test_a_package_without_a_domain_definition_or_a_disk_is_refused(tmp_path, cache, disk):
    refused(write_tar(tmp_path / "a.xvm2", [regular("/disk0.qcow2", b"x")]), cache, match="no description.xml")
    no_disk = domain_xml().replace(b"device='disk'", b"device='cdrom'")
    refused(xvm2(tmp_path / "b.xvm2", disk, description=no_disk), cache, match="has no disk")
    block = domain_xml().replace(b"source file=", b"source dev=")
    refused(xvm2(tmp_path / "c.xvm2", disk, description=block), cache, match="not a file")


def test_a_disk_unlike_its_declared_format_is_refused(tmp_path, cache, disk):
    raw = make_disk(tmp_path / "src" / "disk0.raw", "raw")
    package = xvm2(tmp_path / "lie.xvm2", raw, description=domain_xml(disk_format="qcow2"))
    refused(package, cache, match="the package says the image is qcow2, but its header says raw")


# Bombs and sizes ----------------------------------------------------------------------------------


def test_a_gzip_bomb_stops_at_the_cap(tmp_path, cache, disk):
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb") as out:
        for _ in range(64):
            out.write(bytes(MIB))
    assert bomb.stat().st_size < MIB // 4  # 64 MiB in a few KiB
    with bomb.open("rb") as source:
        reader = CappedGunzip(source, max_bytes=4 * MIB, what="the bomb")
        with pytest.raises(PackageError, match="expands to more than 4194304 bytes"):
            drain(reader)
    assert reader.done <= 5 * MIB  # it stopped within a chunk of the cap, not at 64 MiB

    # The same bomb as the package's gzipped disk: stopped while extracting, the scratch folder removed.
    members = [regular("/description.xml", domain_xml(disk_format="")), regular("/disk0.qcow2.gz", bomb.read_bytes())]
    package = write_tar(tmp_path / "bomb.xvm2", members)
    refused(package, cache, match="disk0.qcow2.gz' expands to more than 4194304 bytes", max_bytes=4 * MIB)


def test_a_gzipped_package_whose_members_outgrow_the_cap_is_refused(tmp_path, cache, disk):
    package = write_tar(
        tmp_path / "big.xvm2",
        [regular("/description.xml", domain_xml()), zeros("/disk0.qcow2", 64 * MIB)],
        gzipped=True,
    )
    assert package.stat().st_size < MIB
    refused(package, cache, match="add up to more than 4194304 bytes", max_bytes=4 * MIB)


def test_a_refused_package_fails_its_versions_delivery_and_leaves_nothing(tmp_path, cache, disk, http_server, db):
    xvm2(http_server.root / "evil.xvm2", disk, extra=[Entry("/x", kind=tarfile.SYMTYPE, linkname="/etc/passwd")])
    version = ApplianceVersionFactory(
        image=None,
        checksum_source="pinned",
        package="xvm2",
        disk_format="",
        image_url=f"{http_server.base_url}/evil.xvm2",
    )
    delivery = image_download(version=version)
    assert delivery.status == "error"
    assert "member 'x' is a symbolic link" in delivery.error
    version.refresh_from_db()
    assert version.image is None  # nothing pinned by a refused download
    assert version.image_state.status == "error"
    assert files_under(cache) == set()


def test_the_gzipped_whole_package_is_read_too(tmp_path, cache, disk):
    package = xvm2(tmp_path / "whole.xvm2.gz", disk, gzip_package=True)
    assert package.read_bytes()[:2] == b"\x1f\x8b"
    _held, kept = unpack(package, cache)
    assert hashlib.sha256(kept.read_bytes()).digest() == hashlib.sha256(disk.read_bytes()).digest()

"""A stack exported as an OVA, taken apart again: the archive's order and format, the manifest, the
descriptor's systems and hardware, and the disks qemu-img reads as streamOptimized VMDKs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.provisioning import conftest as provisioning_fixtures
from transfers import exports
from transfers.models import JobStatus
from transfers.ova_writer import OVF, RASD, USTAR_MAX_BYTES, OvaTier, archive_format, safe_name, write_ova

demo_catalog = provisioning_fixtures.demo_catalog
classic = provisioning_fixtures.classic
shop = provisioning_fixtures.shop

NS = {"ovf": OVF, "rasd": RASD}


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path) -> Path:
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


@pytest.fixture
def ova(shop, member, step) -> Path:
    made = step(lambda: exports.export_stack(user=member, stack=shop))
    made.refresh_from_db()
    assert made.status == JobStatus.READY, made.error
    assert made.format == "ova"
    return Path(made.path)


def _members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as archive:
        return archive.getmembers()


def _read(path: Path, name: str) -> bytes:
    with tarfile.open(path) as archive:
        handle = archive.extractfile(name)
        assert handle is not None
        return handle.read()


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "/abs/name", "a b\x00c", "..", ""])
def test_names_in_the_package_never_leave_its_folder(hostile):
    name = safe_name(hostile)
    assert name
    assert "/" not in name
    assert not name.startswith(".")


def test_the_package_is_ustar_with_the_descriptor_then_the_manifest_then_the_disks(ova, shop):
    members = _members(ova)
    names = [m.name for m in members]
    assert names[:2] == ["shop.ovf", "shop.mf"]  # DSP0243 5.3
    assert [n.rsplit("-", 1)[-1] for n in names[2:]] == ["db.vmdk", "app.vmdk", "web.vmdk"]  # start order
    assert all(m.isfile() and not m.name.startswith("/") and ".." not in m.name for m in members)
    # ustar: the magic is "ustar\0" followed by version "00" (GNU tar writes "ustar  \0").
    with ova.open("rb") as handle:
        assert handle.read(512)[257:265] == b"ustar\x0000"


def test_the_manifest_names_every_file_with_its_sha256(ova):
    lines = _read(ova, "shop.mf").decode().splitlines()
    names = [m.name for m in _members(ova) if m.name != "shop.mf"]  # the descriptor, then the disks
    assert [line.split("(", 1)[1].split(")", 1)[0] for line in lines] == names
    for line in lines:
        name = line[len("SHA256(") : line.index(")")]
        assert line == f"SHA256({name})= {hashlib.sha256(_read(ova, name)).hexdigest()}"


def test_the_disks_are_stream_optimized_vmdks_without_backing_files(ova, tmp_path):
    with tarfile.open(ova) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    for disk in sorted((tmp_path / "unpacked").glob("*.vmdk")):
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-f", "vmdk", "--output=json", str(disk)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
        assert "backing-filename" not in info
        assert info["virtual-size"] >= 64 * 1024**2


def test_the_descriptor_describes_each_tier(ova, shop):
    root = ET.fromstring(_read(ova, "shop.ovf"))  # noqa: S314 - the portal's own output
    assert root.tag == f"{{{OVF}}}Envelope"
    files = {f.get(f"{{{OVF}}}id"): f for f in root.findall("ovf:References/ovf:File", NS)}
    disks = {d.get(f"{{{OVF}}}diskId"): d for d in root.findall("ovf:DiskSection/ovf:Disk", NS)}
    networks = [n.get(f"{{{OVF}}}name") for n in root.findall("ovf:NetworkSection/ovf:Network", NS)]
    sizes = {m.name: m.size for m in _members(ova)}
    for file in files.values():
        assert int(file.get(f"{{{OVF}}}size")) == sizes[file.get(f"{{{OVF}}}href")]
    collection = root.find("ovf:VirtualSystemCollection", NS)
    assert collection is not None
    systems = collection.findall("ovf:VirtualSystem", NS)
    instances = {i.name: i for i in shop.instances.all()}
    assert [s.find("ovf:Name", NS).text for s in systems] == [instances[n].name for n in _names_in_order(shop)]
    order = {
        i.get(f"{{{OVF}}}id"): int(i.get(f"{{{OVF}}}order"))
        for i in collection.findall("ovf:StartupSection/ovf:Item", NS)
    }
    assert sorted(order.values()) == [1, 2, 3]  # db, then app, then web
    for system in systems:
        instance = instances[system.find("ovf:Name", NS).text]
        assert system.find("ovf:OperatingSystemSection", NS) is not None
        items = {
            int(item.find("rasd:ResourceType", NS).text): item
            for item in system.findall("ovf:VirtualHardwareSection/ovf:Item", NS)
        }
        assert int(items[3].find("rasd:VirtualQuantity", NS).text) == instance.vcpus
        assert items[4].find("rasd:AllocationUnits", NS).text == "byte * 2^20"
        assert int(items[4].find("rasd:VirtualQuantity", NS).text) == instance.memory_mib
        disk_item = items[17]
        controller = items[5]
        assert disk_item.find("rasd:Parent", NS).text == controller.find("rasd:InstanceID", NS).text
        disk_id = disk_item.find("rasd:HostResource", NS).text.removeprefix("ovf:/disk/")
        disk = disks[disk_id]
        assert disk.get(f"{{{OVF}}}format").endswith("#streamOptimized")
        assert files[disk.get(f"{{{OVF}}}fileRef")].get(f"{{{OVF}}}href").endswith(f"-{instance.role}.vmdk")
        assert items[10].find("rasd:Connection", NS).text in networks
        assert system.get(f"{{{OVF}}}id") in order


def _names_in_order(stack) -> list[str]:
    by_role = {i.role: i.name for i in stack.instances.all()}
    return [by_role["db"], by_role["app"], by_role["web"]]


def test_the_package_sha256_and_size_are_those_of_the_file(ova, shop):
    export = shop.exports.get()
    assert export.size_bytes == ova.stat().st_size
    assert export.sha256 == hashlib.sha256(ova.read_bytes()).hexdigest()


def test_ustar_unless_a_disk_is_past_its_8_gib():
    assert archive_format(USTAR_MAX_BYTES) == tarfile.USTAR_FORMAT
    assert archive_format(USTAR_MAX_BYTES + 1) == tarfile.GNU_FORMAT


def test_an_existing_file_is_never_overwritten(tmp_path):
    disk = tmp_path / "d.vmdk"
    disk.write_bytes(b"x" * 100)
    tier = OvaTier(
        name="one",
        vcpus=1,
        memory_mib=64,
        arch="x86_64",
        description="",
        disk_path=disk,
        disk_sha256=hashlib.sha256(disk.read_bytes()).hexdigest(),
        disk_capacity_bytes=100,
        start_layer=1,
    )
    target = tmp_path / "one.ova"
    target.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        write_ova(target, stack_name="one", network="n", tiers=[tier])
    assert target.read_bytes() == b"someone else's"


def test_a_one_tier_stacks_ova_reads_back_through_the_portals_own_package_reader(
    member, project, demo_catalog, test_host, step, tmp_path
):
    from catalog.packages import unpack_package
    from provisioning.services import templates
    from provisioning.services.launch import stack_launch_template

    template = templates.template_create(
        user=member, project=project, name="solo", source="tiers:\n  - name: web\n    appliance: demo-web\n"
    )
    solo = step(
        lambda: stack_launch_template(user=member, project=project, name="solo", template=template, lease_seconds=600)
    )
    made = step(lambda: exports.export_stack(user=member, stack=solo))
    made.refresh_from_db()
    assert made.status == JobStatus.READY, made.error
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    unpacked = unpack_package(Path(made.path), package="ova", scratch=scratch, extract=True, max_bytes=2**31)
    web = solo.instances.get()
    assert unpacked.disk_format == "vmdk"
    assert unpacked.sizing.vcpus == web.vcpus
    assert unpacked.sizing.ram_mib == web.memory_mib

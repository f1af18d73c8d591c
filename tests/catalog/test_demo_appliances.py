"""The demo appliance builder: images, feed and reuse, checked without booting or downloading anything.

The build runs on package trees made here (a stand-in kernel, modules and busybox), so it needs
mtools, syslinux and qemu-img but neither apt sources nor the network, and writes only into
``tmp_path``. The end-to-end tests build from the real Debian packages and boot the result.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from catalog.demo_appliances import DEMO_APPLIANCES, ApplianceBuildError, build_demo_appliances
from catalog.demo_appliances.guest import READY_MARKER
from catalog.demo_appliances.initramfs import CpioEntry, build_initramfs, write_cpio
from catalog.demo_appliances.kernel import module_depends, resolve_modules
from catalog.demo_appliances.packages import BuildInputs, Package, parse_candidates, parse_kernel_dependency
from catalog.demo_appliances.tools import find_tools
from catalog.vmcast import NAMESPACE

BASE_URL = "http://127.0.0.1:8000/demo/"
KERNEL = "linux-image-6.1.0-99-cloud-amd64"


def modinfo(depends: str) -> bytes:
    """Enough of a module for the builder: a .modinfo-style ``depends=`` entry."""
    return b"\x7fELF\0license=GPL\0depends=" + depends.encode() + b"\0vermagic=x\0"


class FakePackages:
    """Unpacked package trees made in ``root``; records which packages the build asked to unpack."""

    def __init__(self, root: Path, *, kernel_version: str = "6.1.99-1") -> None:
        self.inputs = BuildInputs(
            kernel=Package(KERNEL, kernel_version), busybox=Package("busybox-static", "1:1.35.0-4+b3")
        )
        self.unpacked_packages: list[str] = []
        self.kernel_tree = root / "kernel"
        modules = self.kernel_tree / "lib" / "modules" / "6.1.0-99-cloud-amd64" / "kernel" / "drivers"
        (self.kernel_tree / "boot").mkdir(parents=True)
        (self.kernel_tree / "boot" / "vmlinuz-6.1.0-99-cloud-amd64").write_bytes(b"stand-in kernel" * 1000)
        modules.mkdir(parents=True)
        # Debian ships modules xz-compressed; one plain one keeps both readers in use.
        for name, depends in {
            "virtio_ring": "",
            "virtio": "virtio_ring",
            "virtio_pci": "virtio,virtio_ring",
            "failover": "",
            "net_failover": "failover",
        }.items():
            (modules / f"{name}.ko.xz").write_bytes(lzma.compress(modinfo(depends)))
        (modules / "virtio_net.ko").write_bytes(modinfo("net_failover,virtio,virtio_ring"))
        self.busybox_tree = root / "busybox"
        (self.busybox_tree / "bin").mkdir(parents=True)
        (self.busybox_tree / "bin" / "busybox").write_bytes(b"stand-in busybox")

    def resolve(self) -> BuildInputs:
        return self.inputs

    def unpacked(self, package: Package) -> Path:
        self.unpacked_packages.append(package.name)
        return self.kernel_tree if package == self.inputs.kernel else self.busybox_tree


def build(out_dir: Path, packages: FakePackages, log: list[str] | None = None) -> Path:
    lines = log if log is not None else []
    return build_demo_appliances(
        out_dir=out_dir, base_url=BASE_URL, work_dir=out_dir.parent / "work", log=lines.append, packages=packages
    )


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> FakePackages:
    return FakePackages(tmp_path_factory.mktemp("packages"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, packages: FakePackages) -> Path:
    out_dir = tmp_path_factory.mktemp("demo") / "out"
    build(out_dir, packages)
    return out_dir


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_builds_three_standalone_qcow2_images(built: Path) -> None:
    for appliance in DEMO_APPLIANCES:
        image = built / appliance.filename
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-f", "qcow2", "--output=json", str(image)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert info["format"] == "qcow2"
        assert info["virtual-size"] == 32 * 1024 * 1024  # the smallest disk mformat makes FAT16 on
        assert "backing-filename" not in info
        assert "full-backing-filename" not in info


def test_feed_describes_each_image(built: Path) -> None:
    # The feed was just written by the build under test, not fetched from anywhere.
    channel = ET.parse(built / "feed.xml").getroot().find("channel")  # noqa: S314
    assert channel is not None
    items = channel.findall("item")
    assert len(items) == 3
    by_appliance = {item.findtext(f"{{{NAMESPACE}}}appliance"): item for item in items}
    manifest = json.loads((built / "manifest.json").read_text())
    for appliance in DEMO_APPLIANCES:
        item = by_appliance[appliance.appliance]
        image = built / appliance.filename
        enclosure = item.find("enclosure")
        assert enclosure is not None
        assert enclosure.get("url") == f"{BASE_URL.rstrip('/')}/{appliance.filename}"
        assert int(enclosure.get("length", "-1")) == image.stat().st_size
        assert item.findtext(f"{{{NAMESPACE}}}sha256") == sha256_of(image)
        assert item.findtext(f"{{{NAMESPACE}}}version") == manifest[appliance.appliance]["version"]
        assert item.findtext(f"{{{NAMESPACE}}}format") == "qcow2"
        assert item.findtext(f"{{{NAMESPACE}}}port") == str(appliance.port)
        assert item.findtext(f"{{{NAMESPACE}}}role") == appliance.role
        assert item.findtext(f"{{{NAMESPACE}}}minram") == "128"


def test_second_build_reuses_outputs_without_unpacking_packages(built: Path, packages: FakePackages) -> None:
    outputs = [built / appliance.filename for appliance in DEMO_APPLIANCES] + [built / "feed.xml"]
    before = {path: path.stat().st_mtime_ns for path in outputs}
    feed_before = (built / "feed.xml").read_bytes()
    packages.unpacked_packages.clear()
    lines: list[str] = []

    build(built, packages, lines)

    assert {path: path.stat().st_mtime_ns for path in outputs} == before
    assert (built / "feed.xml").read_bytes() == feed_before
    assert packages.unpacked_packages == []
    assert not any(line.startswith(("building", "downloading", "unpacking")) for line in lines)
    assert [line for line in lines if line.endswith("is up to date")] == [
        f"{appliance.filename} is up to date" for appliance in DEMO_APPLIANCES
    ]


def test_a_new_kernel_publishes_new_versions(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    build(out_dir, FakePackages(tmp_path / "old"))
    old = json.loads((out_dir / "manifest.json").read_text())
    build(out_dir, FakePackages(tmp_path / "new", kernel_version="6.1.100-1"))
    new = json.loads((out_dir / "manifest.json").read_text())
    for appliance in DEMO_APPLIANCES:
        assert new[appliance.appliance]["version"] != old[appliance.appliance]["version"]
        assert new[appliance.appliance]["version"].startswith("1.0.0+")


def read_cpio(archive: bytes) -> dict[str, tuple[int, bytes]]:
    """Path -> (mode, data) for each entry of a newc archive."""
    entries: dict[str, tuple[int, bytes]] = {}
    offset = 0
    while True:
        header = archive[offset : offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = archive[name_start : name_start + name_size - 1].decode()
        data_start = name_start + name_size + (-(110 + name_size) % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, archive[data_start : data_start + size])
        offset = data_start + size + (-size % 4)


def test_initramfs_holds_init_busybox_console_and_modules_in_load_order(packages: FakePackages) -> None:
    web = DEMO_APPLIANCES[0]
    modules = {"virtio": b"m1", "virtio_net": b"m2"}
    entries = read_cpio(gzip.decompress(build_initramfs(web, "1.0.0+abc", b"busybox-bytes", modules)))
    mode, init = entries["init"]
    assert stat.S_ISREG(mode)
    assert mode & 0o111
    script = init.decode()
    assert "for m in virtio virtio_net; do" in script
    assert f"httpd -p {web.port} -h /www" in script
    assert f"{READY_MARKER} {web.appliance} port {web.port}" in script
    assert entries["bin/busybox"][1] == b"busybox-bytes"
    assert stat.S_ISCHR(entries["dev/console"][0])
    assert entries["lib/modules/virtio_net.ko"][1] == b"m2"
    assert "Version: 1.0.0+abc." in entries["www/index.html"][1].decode()


def test_initramfs_is_byte_identical_for_identical_inputs() -> None:
    web = DEMO_APPLIANCES[0]
    assert build_initramfs(web, "1", b"bb", {"virtio": b"m"}) == build_initramfs(web, "1", b"bb", {"virtio": b"m"})


def test_cpio_archive_is_newc_with_trailer() -> None:
    archive = write_cpio([CpioEntry("init", 0o100755, b"#!/bin/sh\n")])
    assert archive.startswith(b"070701")
    assert b"init\0" in archive
    assert b"TRAILER!!!\0" in archive
    assert len(archive) % 4 == 0


def test_modules_load_after_their_dependencies(tmp_path: Path) -> None:
    def module(name: str, depends: str) -> Path:
        path = tmp_path / f"{name}.ko"
        path.write_bytes(modinfo(depends))
        return path

    index = {
        "virtio_net": module("virtio_net", "virtio,net_failover"),
        "net_failover": module("net_failover", "failover"),
        "failover": module("failover", ""),
        "virtio": module("virtio", ""),
    }
    assert module_depends(index["virtio_net"].read_bytes()) == ["virtio", "net_failover"]
    assert list(resolve_modules(index, roots=("virtio_net",))) == [
        "virtio",
        "failover",
        "net_failover",
        "virtio_net",
    ]


def test_a_missing_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "virtio_net.ko").write_bytes(modinfo("net_failover"))
    with pytest.raises(ApplianceBuildError, match="kernel module net_failover not found"):
        resolve_modules({"virtio_net": tmp_path / "virtio_net.ko"}, roots=("virtio_net",))


APT_POLICY = """linux-image-6.1.0-99-cloud-amd64:
  Installed: (none)
  Candidate: 6.1.99-1
  Version table:
     6.1.99-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
busybox-static:
  Installed: (none)
  Candidate: 1:1.35.0-4+b3
  Version table:
     1:1.35.0-4+b3 500
"""


def test_apt_policy_gives_each_packages_candidate_version() -> None:
    assert parse_candidates(APT_POLICY, (KERNEL, "busybox-static")) == {
        KERNEL: "6.1.99-1",
        "busybox-static": "1:1.35.0-4+b3",
    }


def test_a_package_apt_cannot_install_is_named() -> None:
    policy = APT_POLICY.replace("Candidate: 6.1.99-1", "Candidate: (none)")
    with pytest.raises(ApplianceBuildError, match=f"not available from the configured apt sources: {KERNEL}"):
        parse_candidates(policy, (KERNEL, "busybox-static"))


def test_the_metapackage_names_the_versioned_kernel() -> None:
    depends = f"linux-image-cloud-amd64\n  Depends: {KERNEL}\n  Depends: linux-base\n"
    assert parse_kernel_dependency(depends) == KERNEL
    with pytest.raises(ApplianceBuildError, match="could not find the kernel package"):
        parse_kernel_dependency("linux-image-cloud-amd64\n  Depends: linux-base\n")


def test_missing_tools_are_named() -> None:
    with pytest.raises(ApplianceBuildError, match="missing tools: no-such-tool-here "):
        find_tools(("no-such-tool-here", "qemu-img"))

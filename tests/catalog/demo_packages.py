"""Stand-in Debian packages for the demo appliance builder's tests, and readers of what it writes.

``FakePackages`` makes the unpacked kernel and busybox trees a real build reads (a stand-in kernel
image, modules whose only content is their ``depends=`` entry, a stand-in busybox), so a build
needs mtools, syslinux and qemu-img but neither apt sources nor the network.
"""

from __future__ import annotations

import lzma
import xml.etree.ElementTree as ET
from pathlib import Path

from catalog.demo_appliances import build_demo_appliances
from catalog.demo_appliances.packages import BuildInputs, Package
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
            "virtio_blk": "virtio,virtio_ring",
            "cdrom": "",
            "isofs": "cdrom",
            "button": "",
            "evdev": "",
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


def build(out_dir: Path, packages: FakePackages, log: list[str] | None = None, *, include_probe: bool = False) -> Path:
    lines = log if log is not None else []
    return build_demo_appliances(
        out_dir=out_dir,
        base_url=BASE_URL,
        work_dir=out_dir.parent / "work",
        log=lines.append,
        packages=packages,
        include_probe=include_probe,
    )


def feed_appliances(out_dir: Path) -> list[str | None]:
    channel = ET.parse(out_dir / "feed.xml").getroot().find("channel")  # noqa: S314 (written by this build)
    assert channel is not None
    return [item.findtext(f"{{{NAMESPACE}}}appliance") for item in channel.findall("item")]


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

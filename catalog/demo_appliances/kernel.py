"""Step 2: the kernel and the modules the guest loads, taken from the unpacked kernel package.

Debian's cloud kernel builds virtio, the ISO 9660 filesystem and its CD-ROM layer, the ACPI button
driver and the input event interface as modules. The guest needs the network driver, the block
driver (the config drive, and the db tier's record log on the boot disk: the BIOS reads the boot
disk for the boot loader, so booting alone never needs it), isofs to read the config drive, and
the ACPI power button as an input device that busybox ``acpid`` can watch. busybox ``insmod``
neither resolves dependencies nor decompresses: the init script loads plain module files in the
order worked out here, from each module's own ``depends=`` (an unpacked package has no
``modules.dep``, which ``depmod`` makes on install).
"""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

from catalog.demo_appliances.tools import ApplianceBuildError

# virtio_pci finds the devices; virtio_net drives the NICs; virtio_blk shows the boot disk and the
# config drive as disks and isofs (which needs cdrom) mounts the drive; button reports the ACPI power
# button (libvirt's shutdown and reboot) as a key, and evdev lets acpid read it.
ROOT_MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "isofs", "button", "evdev")


def find_kernel(tree: Path) -> Path:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise ApplianceBuildError(f"no boot/vmlinuz-* in the unpacked kernel package at {tree}")
    return kernels[0]


def module_index(tree: Path) -> dict[str, Path]:
    """Map module names (as modinfo spells them) to their files in the kernel tree."""
    index: dict[str, Path] = {}
    for path in (tree / "lib" / "modules").rglob("*.ko*"):
        name = path.name.split(".ko", 1)[0].replace("-", "_")
        index[name] = path
    return index


def read_module(path: Path) -> bytes:
    """Module bytes as insmod needs them: decompressed."""
    if path.name.endswith(".ko"):
        return path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(path.read_bytes())
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(path.read_bytes())
    raise ApplianceBuildError(f"unsupported module compression: {path.name}")


def module_depends(data: bytes) -> list[str]:
    """The ``depends=`` entry of a module's .modinfo section."""
    marker = b"\0depends="
    start = data.find(marker)
    if start < 0:
        return []
    start += len(marker)
    value = data[start : data.index(b"\0", start)].decode()
    return [name for name in value.split(",") if name]


def resolve_modules(index: dict[str, Path], roots: tuple[str, ...] = ROOT_MODULES) -> dict[str, bytes]:
    """Modules needed for ``roots`` in load order (dependencies first), with their bytes."""
    ordered: dict[str, bytes] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting:
            return
        if name not in index:
            raise ApplianceBuildError(f"kernel module {name} not found in the kernel package")
        visiting.add(name)
        data = read_module(index[name])
        for dependency in module_depends(data):
            visit(dependency)
        ordered[name] = data

    for root in roots:
        visit(root)
    return ordered

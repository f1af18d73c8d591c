"""Step 3: the initramfs, a gzipped cpio archive written here rather than by ``cpio``.

Writing the archive ourselves means device nodes need no ``mknod`` (so no root) and identical
inputs give identical bytes (zero timestamps, root ownership), which keeps rebuilt images stable.
"""

from __future__ import annotations

import gzip
import io
import stat
from dataclasses import dataclass

from catalog.demo_appliances.appliances import DemoAppliance
from catalog.demo_appliances.guest import APPLIANCE_ENV, EXECUTABLES, render_appliance_env


@dataclass(frozen=True)
class CpioEntry:
    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _header(entry: CpioEntry, ino: int) -> bytes:
    name = entry.path.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
    return b"070701" + b"".join(f"{value:08x}".encode() for value in fields) + name


def _pad4(buffer: io.BytesIO) -> None:
    buffer.write(b"\0" * (-buffer.tell() % 4))


def write_cpio(entries: list[CpioEntry]) -> bytes:
    """A newc archive with zero timestamps and root ownership, so identical inputs give identical bytes."""
    buffer = io.BytesIO()
    for ino, entry in enumerate([*entries, CpioEntry("TRAILER!!!", 0)], start=1):
        buffer.write(_header(entry, ino))
        _pad4(buffer)
        buffer.write(entry.data)
        _pad4(buffer)
    return buffer.getvalue()


def _directory(path: str) -> CpioEntry:
    return CpioEntry(path, stat.S_IFDIR | 0o755)


def _regular(path: str, data: bytes, mode: int = 0o644) -> CpioEntry:
    return CpioEntry(path, stat.S_IFREG | mode, data)


# Mount points and the folders the guest writes to; the rest follow from the files.
_EMPTY_DIRS = ("cidata", "dev", "proc", "sys", "tmp", "www")


def _directories(paths: list[str]) -> list[CpioEntry]:
    """Every folder the paths need, parents first (sorting puts "lib" before "lib/demo")."""
    folders = set(_EMPTY_DIRS)
    for path in paths:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[: depth + 1]) for depth in range(len(parts)))
    return [_directory(folder) for folder in sorted(folders)]


def initramfs_entries(
    appliance: DemoAppliance, version: str, busybox: bytes, modules: dict[str, bytes], files: dict[str, bytes]
) -> list[CpioEntry]:
    """The guest's files: busybox, the modules, ``files`` (the shared rootfs) and the appliance's settings."""
    regular = {
        "bin/busybox": (busybox, 0o755),
        **{f"lib/modules/{name}.ko": (data, 0o644) for name, data in modules.items()},
        **{path: (data, 0o755 if path in EXECUTABLES else 0o644) for path, data in files.items()},
        APPLIANCE_ENV: (render_appliance_env(appliance, version, tuple(modules)).encode(), 0o644),
    }
    entries = _directories([*regular, "bin/sh"])
    # The kernel opens /dev/console before init runs, i.e. before devtmpfs is mounted.
    entries.append(CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries.append(CpioEntry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"))
    entries.extend(_regular(path, data, mode) for path, (data, mode) in regular.items())
    return entries


def build_initramfs(
    appliance: DemoAppliance, version: str, busybox: bytes, modules: dict[str, bytes], files: dict[str, bytes]
) -> bytes:
    archive = write_cpio(initramfs_entries(appliance, version, busybox, modules, files))
    return gzip.compress(archive, compresslevel=6, mtime=0)

"""Archipel packages (.xvm2): a tar, often gzipped, of ``description.xml`` (a libvirt domain) and gzipped disks.

Archipel writes its members with absolute names (``/description.xml``, ``/disk0.qcow2.gz``); they are
read as relative. The domain definition names its disk by the path it had on the publisher's host;
only that path's base name counts, matched (with or without ``.gz``) to exactly one member.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from catalog.packages.archive import DISK_FILE_NAME, PackageDisk, package_stream, strip_gz
from catalog.packages.errors import PackageError
from catalog.packages.libvirt_domain import read_domain
from catalog.packages.safe_tar import base_name, extract_to, quoted, read_members, read_small
from catalog.packages.safe_xml import MAX_DESCRIPTOR_BYTES

DESCRIPTION_NAME = "description.xml"


def unpack_xvm2(
    path: Path, *, scratch: Path, extract: bool, max_bytes: int, tick: Callable[[], None] | None = None
) -> PackageDisk:
    """Read the package's domain definition, and (when ``extract``) put its first disk into ``scratch``."""
    description: bytes | None = None
    names: list[str] = []
    with package_stream(path, max_bytes=max_bytes) as stream:
        for member, data in read_members(stream, max_total_bytes=max_bytes, tick=tick):
            names.append(member.name)
            if member.name == DESCRIPTION_NAME:
                description = read_small(
                    data, member, max_bytes=MAX_DESCRIPTOR_BYTES, what="the package's domain definition"
                )
    if description is None:
        raise PackageError("the package has no description.xml (the domain definition of an Archipel package)")
    domain = read_domain(description)
    chosen = _disk_member(names, domain.disk_name)
    disk = scratch / DISK_FILE_NAME if extract else None
    if disk is not None:
        with package_stream(path, max_bytes=max_bytes) as stream:
            for member, data in read_members(stream, max_total_bytes=max_bytes, tick=tick):
                if member.name == chosen:
                    extract_to(
                        data,
                        disk,
                        gunzip=chosen.endswith(".gz"),
                        max_bytes=max_bytes,
                        what=f"the package's disk '{quoted(chosen)}'",
                        sink=lambda _chunk: None,
                    )
                    break
        if not disk.is_file():
            raise PackageError("the package changed while it was read")
    return PackageDisk(disk=disk, declared_format=domain.disk_format, sizing=domain.sizing, ignored=domain.ignored)


def _disk_member(names: list[str], disk_name: str) -> str:
    wanted = strip_gz(disk_name)
    matches = [name for name in names if name != DESCRIPTION_NAME and strip_gz(base_name(name)) == wanted]
    if not matches:
        raise PackageError(f"the package holds no file named '{quoted(disk_name)}' for its domain's first disk")
    if len(matches) > 1:
        raise PackageError(f"the package holds {len(matches)} files named '{quoted(wanted)}'; which is the disk?")
    return matches[0]

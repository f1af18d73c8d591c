"""What the portal takes from the libvirt domain definition inside an Archipel package: one disk's name and the sizing.

The definition was written for someone else's host. Its paths, devices, emulator and extra QEMU
arguments (``<emulator>``, ``<hostdev>``, ``<qemu:commandline>``, ...) would reach into this host if
they were used, so none is: the portal builds its own domain, and takes from this one only the base
name of the first disk's file (matched to a member of the package, never opened as a path), its
declared format, the vCPU count and the memory. What it left out is reported, for the log.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import PurePosixPath

from catalog.packages.errors import PackageError
from catalog.packages.safe_tar import quoted
from catalog.packages.safe_xml import attribute, child, children, local, namespace, parse_xml, text_of, whole_number
from catalog.packages.sizing import Sizing, bounded_sizing, libvirt_unit_bytes

QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"
# Devices that hand the guest something of the host's.
_HOST_DEVICES = ("emulator", "hostdev", "filesystem", "redirdev", "smartcard", "shmem")
_MAX_FORMAT_CHARS = 16


@dataclass(frozen=True)
class DomainFacts:
    disk_name: str  # the base name of the first disk's source file
    disk_format: str  # its <driver type>, "" when absent
    sizing: Sizing
    ignored: tuple[str, ...]


def read_domain(data: bytes) -> DomainFacts:
    root = parse_xml(data, what="the package's domain definition")
    if local(root.tag) != "domain":
        raise PackageError("the package's description.xml is not a libvirt domain definition")
    devices = child(root, "devices")
    disks = [] if devices is None else [d for d in children(devices, "disk") if attribute(d, "device") in ("", "disk")]
    if not disks:
        raise PackageError("the package's domain definition has no disk")
    first = disks[0]
    source = child(first, "source")
    path = attribute(source, "file") if source is not None else ""
    if not path:
        raise PackageError("the first disk of the package's domain definition is not a file (it names no source file)")
    disk_name = PurePosixPath(path.replace("\\", "/")).name
    if disk_name in ("", ".", ".."):
        raise PackageError(f"the first disk of the package's domain definition names no file ('{quoted(path)}')")
    driver = child(first, "driver")
    disk_format = attribute(driver, "type").lower() if driver is not None else ""
    if len(disk_format) > _MAX_FORMAT_CHARS:
        raise PackageError("the first disk of the package's domain definition has an unknown format")
    memory = child(root, "memory")
    ram_bytes = None
    if memory is not None:
        amount = whole_number(text_of(memory))
        unit = libvirt_unit_bytes(attribute(memory, "unit"))
        ram_bytes = amount * unit if amount and unit else None
    sizing = bounded_sizing(vcpus=whole_number(text_of(child(root, "vcpu")), limit_digits=6), ram_bytes=ram_bytes)
    return DomainFacts(disk_name=disk_name, disk_format=disk_format, sizing=sizing, ignored=_ignored(root, devices))


def _ignored(root: ET.Element, devices: ET.Element | None) -> tuple[str, ...]:
    found: list[str] = []
    if devices is not None:
        found += [tag for tag in _HOST_DEVICES if child(devices, tag) is not None]
        if sum(1 for _ in children(devices, "disk")) > 1:
            found.append("other disks")
    found += [f"qemu:{local(element.tag)}" for element in root.iter() if namespace(element.tag) == QEMU_NAMESPACE]
    return tuple(dict.fromkeys(found))

"""Reading an OVF descriptor (DMTF DSP0243) for the one thing the portal builds from it: a machine with one disk.

Taken: the first disk of the one virtual system (the first hard-disk item of its hardware section, or
else the first disk of the DiskSection), the file that disk is made from (References/File), the
disk's declared format (``ovf:format``, a URI) and the system's vCPUs (ResourceType 3) and memory
(ResourceType 4, in its AllocationUnits). An OVF may describe several machines in a
VirtualSystemCollection; those are refused: the portal launches appliances of one machine, and
picking one of them silently would launch something the publisher did not mean alone.

Elements and attributes are matched on their local names, so OVF 1.x and 2.x descriptors read alike.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from catalog.packages.errors import PackageError
from catalog.packages.safe_tar import quoted
from catalog.packages.safe_xml import attribute, child, children, local, parse_xml, text_of, whole_number
from catalog.packages.sizing import Sizing, bounded_sizing, ovf_unit_bytes

RESOURCE_CPU = 3
RESOURCE_MEMORY = 4
RESOURCE_DISK = 17
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# ovf:format URIs and the qemu-img format each names (matched on a part of the URI; vhd is vpc to qemu-img).
_FORMAT_HINTS = (("vmdk", "vmdk"), ("qcow", "qcow2"), ("vhdx", "vhdx"), ("vhd", "vpc"), ("vdi", "vdi"), ("raw", "raw"))


@dataclass(frozen=True)
class OvfFacts:
    disk_href: str  # the file of the first disk, as References names it
    disk_format: str  # from ovf:format; "" when the URI is not one the portal recognises (the header decides)
    gzipped: bool  # ovf:compression="gzip"
    sizing: Sizing


def read_ovf(data: bytes) -> OvfFacts:
    root = parse_xml(data, what="the OVF descriptor")
    if local(root.tag) != "Envelope":
        raise PackageError("the .ovf file is not an OVF descriptor (its root is not an Envelope)")
    system = _the_virtual_system(root)
    files = {attribute(entry, "id"): entry for entry in _all(root, "References", "File")}
    disks = {attribute(disk, "diskId"): disk for disk in _all(root, "DiskSection", "Disk")}
    hardware = child(system, "VirtualHardwareSection")
    items = list(children(hardware, "Item")) + list(children(hardware, "StorageItem")) if hardware is not None else []
    disk = _first_disk(items, disks, root)
    file_ref = attribute(disk, "fileRef")
    if not file_ref:
        raise PackageError("the OVF's first disk has no file (an empty disk to be made); the portal needs its image")
    entry = files.get(file_ref)
    if entry is None:
        raise PackageError(f"the OVF's first disk names the file '{quoted(file_ref)}', which References does not list")
    href = attribute(entry, "href")
    if not href or _URL_SCHEME.match(href):
        raise PackageError(f"the OVF's disk file '{quoted(href)}' is not a file inside the package")
    if attribute(entry, "chunkSize"):
        raise PackageError("the OVF's disk file is split into chunks; the portal takes it whole")
    compression = attribute(entry, "compression").lower()
    if compression not in ("", "identity", "gzip"):
        raise PackageError(f"the OVF's disk file is compressed with '{quoted(compression)}'; the portal reads gzip")
    return OvfFacts(
        disk_href=href,
        disk_format=_format_of(attribute(disk, "format")),
        gzipped=compression == "gzip",
        sizing=_sizing(items),
    )


def _the_virtual_system(root: ET.Element) -> ET.Element:
    systems = [element for element in root.iter() if local(element.tag) == "VirtualSystem"]
    if len(systems) > 1:
        raise PackageError(
            f"the OVA describes {len(systems)} virtual machines (a VirtualSystemCollection); "
            "the portal takes OVAs of one virtual machine"
        )
    if not systems:
        raise PackageError("the OVF descriptor describes no virtual machine (no VirtualSystem)")
    return systems[0]


def _all(root: ET.Element, section: str, name: str) -> list[ET.Element]:
    return [element for found in root.iter() if local(found.tag) == section for element in children(found, name)]


def _resource_type(item: ET.Element) -> int | None:
    return whole_number(text_of(child(item, "ResourceType")), limit_digits=4)


def _first_disk(items: list[ET.Element], disks: dict[str, ET.Element], root: ET.Element) -> ET.Element:
    for item in items:
        if _resource_type(item) != RESOURCE_DISK:
            continue
        for resource in children(item, "HostResource"):
            # "ovf:/disk/vmdisk1" (OVF 1.x) or "/disk/vmdisk1"
            reference = text_of(resource).removeprefix("ovf:")
            if reference.startswith("/disk/") and reference.removeprefix("/disk/") in disks:
                return disks[reference.removeprefix("/disk/")]
    listed = _all(root, "DiskSection", "Disk")
    if not listed:
        raise PackageError("the OVF descriptor lists no disk")
    return listed[0]


def _format_of(uri: str) -> str:
    lowered = uri.lower()
    for hint, name in _FORMAT_HINTS:
        if hint in lowered:
            return name
    return ""


def _sizing(items: list[ET.Element]) -> Sizing:
    vcpus: int | None = None
    ram_bytes: int | None = None
    for item in items:
        kind = _resource_type(item)
        quantity = whole_number(text_of(child(item, "VirtualQuantity")))
        if kind == RESOURCE_CPU and vcpus is None and quantity:
            vcpus = quantity
        elif kind == RESOURCE_MEMORY and ram_bytes is None and quantity:
            unit = ovf_unit_bytes(text_of(child(item, "AllocationUnits")))
            ram_bytes = quantity * unit if unit else None
    return bounded_sizing(vcpus=vcpus, ram_bytes=ram_bytes)

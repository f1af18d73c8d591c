"""A stack as an OVA (DMTF DSP0243, OVF 1.0): a descriptor, one streamOptimized VMDK per tier, a manifest.

The OVF descriptor holds a ``VirtualSystemCollection`` with one ``VirtualSystem`` per tier (its
vCPUs, memory, a disk controller and the disk made from the tier's VMDK, a NIC on the stack's
network) and a ``StartupSection`` that starts the tiers in the stack's dependency order. The
manifest lists ``SHA256(file)= digest`` for the descriptor and every disk. The package is a ustar
archive in the order DSP0243 (5.3) sets: the descriptor, then the manifest, then the disks in the
order References lists them, so an importer can check each disk as it streams past; names are
plain, never absolute.

This module knows nothing of the portal's rows: it is given the tiers as plain values.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

OVF = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
STREAM_OPTIMIZED = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
for _prefix, _uri in (("ovf", OVF), ("rasd", RASD), ("vssd", VSSD), ("xsi", XSI)):
    ET.register_namespace(_prefix, _uri)

# CIM_ResourceAllocationSettingData.ResourceType values.
CPU, MEMORY, IDE_CONTROLLER, ETHERNET, DISK = 3, 4, 5, 10, 17
# CIM_OperatingSystem.OsType: the portal does not know an appliance's OS, only its architecture.
_OS_OTHER, _OS_OTHER_64 = 1, 102
_64_BIT_ARCHES = {"x86_64", "aarch64", "ppc64le", "s390x", "riscv64"}
# Plenty for the name of a tar member (ustar allows 100 bytes) and of an OVF id.
_NAME_CHARS = 60
# ustar writes sizes in 11 octal digits; a larger disk needs the GNU base-256 size field.
USTAR_MAX_BYTES = 8**11 - 1
_COPY_BUFFER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class OvaTier:
    """One tier of the stack and its disk, already written as a streamOptimized VMDK."""

    name: str
    vcpus: int
    memory_mib: int
    arch: str
    description: str  # what it runs (the appliance), for the OS section
    disk_path: Path
    disk_sha256: str
    disk_capacity_bytes: int  # the disk the guest sees
    start_layer: int  # 1 for the tiers that depend on none; a tier starts after every lower layer


def safe_name(text: str) -> str:
    """``text`` as a file or id name: letters, digits, dot, dash and underscore, not starting with a dot."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")[:_NAME_CHARS]
    return cleaned or "disk"


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _sub(parent: ET.Element, namespace: str, tag: str, text: str | None = None, /, **attributes: str) -> ET.Element:
    """A child element; its attributes (``ovf:``) given by keyword, as ``name=`` or ``id=``."""
    element = ET.SubElement(parent, _q(namespace, tag), {_q(OVF, k): v for k, v in attributes.items()})
    if text is not None:
        element.text = text
    return element


def _section(parent: ET.Element, tag: str, info: str, /, **attributes: str) -> ET.Element:
    section = _sub(parent, OVF, tag, **attributes)
    _sub(section, OVF, "Info", info)
    return section


def _item(hardware: ET.Element, **values: str | int) -> None:
    """A RASD item; its elements in the schema's order, which is alphabetical."""
    item = _sub(hardware, OVF, "Item")
    for name in sorted(values):
        _sub(item, RASD, name, str(values[name]))


def disk_file_names(stack_name: str, tiers: Sequence[OvaTier]) -> list[str]:
    """The VMDKs' names inside the package, one per tier, distinct."""
    base = safe_name(stack_name)
    return [f"{base}-{index}-{safe_name(tier.name)}.vmdk" for index, tier in enumerate(tiers, start=1)]


def ovf_descriptor(*, stack_name: str, network: str, tiers: Sequence[OvaTier], disk_files: Sequence[str]) -> bytes:
    """The OVF 1.0 descriptor of the stack (see the module)."""
    envelope = ET.Element(_q(OVF, "Envelope"), {_q(OVF, "version"): "1.0"})
    references = _sub(envelope, OVF, "References")
    disks = _section(envelope, "DiskSection", "The virtual disks of the tiers")
    networks = _section(envelope, "NetworkSection", "The network the tiers share")
    network_name = safe_name(network)
    _sub(_sub(networks, OVF, "Network", name=network_name), OVF, "Description", "The stack's private network")

    collection = _sub(envelope, OVF, "VirtualSystemCollection", id=safe_name(stack_name))
    _sub(collection, OVF, "Info", "A multi-tier stack exported from the portal")
    _sub(collection, OVF, "Name", stack_name)
    startup = _section(collection, "StartupSection", "The tiers start in dependency order")
    for index, (tier, file_name) in enumerate(zip(tiers, disk_files, strict=True), start=1):
        file_id, disk_id, system_id = f"file{index}", f"vmdisk{index}", f"{index}-{safe_name(tier.name)}"
        _sub(references, OVF, "File", href=file_name, id=file_id, size=str(tier.disk_path.stat().st_size))
        _sub(
            disks,
            OVF,
            "Disk",
            capacity=str(tier.disk_capacity_bytes),
            capacityAllocationUnits="byte",
            diskId=disk_id,
            fileRef=file_id,
            format=STREAM_OPTIMIZED,
        )
        _sub(startup, OVF, "Item", id=system_id, order=str(tier.start_layer))
        _virtual_system(collection, tier, system_id=system_id, disk_id=disk_id, network=network_name)
    ET.indent(envelope)
    return ET.tostring(envelope, encoding="utf-8", xml_declaration=True) + b"\n"


def _virtual_system(collection: ET.Element, tier: OvaTier, *, system_id: str, disk_id: str, network: str) -> None:
    system = _sub(collection, OVF, "VirtualSystem", id=system_id)
    _sub(system, OVF, "Info", f"The {tier.name} tier")
    _sub(system, OVF, "Name", tier.name)
    os_type = _OS_OTHER_64 if tier.arch in _64_BIT_ARCHES else _OS_OTHER
    operating_system = _section(system, "OperatingSystemSection", "The guest's operating system", id=str(os_type))
    _sub(operating_system, OVF, "Description", tier.description or "Unknown")
    hardware = _section(system, "VirtualHardwareSection", "Virtual hardware requirements")
    settings = _sub(hardware, OVF, "System")
    for name, value in (
        ("ElementName", "Virtual Hardware Family"),
        ("InstanceID", "0"),
        ("VirtualSystemIdentifier", tier.name),
        # The family most importers accept; the guest itself only needs x86 PC hardware.
        ("VirtualSystemType", "vmx-07"),
    ):
        _sub(settings, VSSD, name, value)
    _item(
        hardware,
        AllocationUnits="hertz * 10^6",
        Description="Number of virtual CPUs",
        ElementName=f"{tier.vcpus} virtual CPU(s)",
        InstanceID=1,
        ResourceType=CPU,
        VirtualQuantity=tier.vcpus,
    )
    _item(
        hardware,
        AllocationUnits="byte * 2^20",
        Description="Memory size",
        ElementName=f"{tier.memory_mib} MB of memory",
        InstanceID=2,
        ResourceType=MEMORY,
        VirtualQuantity=tier.memory_mib,
    )
    _item(
        hardware,
        Address=0,
        Description="IDE controller",
        ElementName="ideController0",
        InstanceID=3,
        ResourceType=IDE_CONTROLLER,
    )
    _item(
        hardware,
        AddressOnParent=0,
        ElementName="disk0",
        HostResource=f"ovf:/disk/{disk_id}",
        InstanceID=4,
        Parent=3,
        ResourceType=DISK,
    )
    _item(
        hardware,
        AutomaticAllocation="true",
        Connection=network,
        Description=f"A NIC on {network}",
        ElementName="ethernet0",
        InstanceID=5,
        ResourceSubType="E1000",
        ResourceType=ETHERNET,
    )


def manifest(entries: Sequence[tuple[str, str]]) -> bytes:
    """The ``.mf`` file: ``SHA256(name)= digest`` per (name, sha256) pair."""
    return "".join(f"SHA256({name})= {digest}\n" for name, digest in entries).encode()


class _HashingWriter:
    """A write-only file that hashes what passes through it (so the package is read once, while written)."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self.digest = hashlib.sha256()
        self.written = 0

    def write(self, data: bytes) -> int:
        self._target.write(data)
        self.digest.update(data)
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written


@dataclass(frozen=True)
class WrittenOva:
    path: Path
    size_bytes: int
    sha256: str


def write_ova(dest: Path, *, stack_name: str, network: str, tiers: Sequence[OvaTier]) -> WrittenOva:
    """Write the package to ``dest`` (the caller removes it on failure); its size and sha256."""
    disk_files = disk_file_names(stack_name, tiers)
    descriptor = ovf_descriptor(stack_name=stack_name, network=network, tiers=tiers, disk_files=disk_files)
    base = safe_name(stack_name)
    ovf_name, mf_name = f"{base}.ovf", f"{base}.mf"
    entries = [(ovf_name, hashlib.sha256(descriptor).hexdigest())]
    entries += [(name, tier.disk_sha256) for name, tier in zip(disk_files, tiers, strict=True)]
    largest = max((tier.disk_path.stat().st_size for tier in tiers), default=0)
    now = int(time.time())
    with dest.open("xb") as handle:
        writer = _HashingWriter(handle)
        # Written front to back (tarfile only writes and asks where it is), so it can be hashed on the way.
        with tarfile.TarFile(
            fileobj=cast(BinaryIO, writer),
            mode="w",
            format=archive_format(largest),
            copybufsize=_COPY_BUFFER_BYTES,
        ) as archive:
            _add_bytes(archive, ovf_name, descriptor, now)
            _add_bytes(archive, mf_name, manifest(entries), now)
            for name, tier in zip(disk_files, tiers, strict=True):
                with tier.disk_path.open("rb") as disk:
                    archive.addfile(_member(name, tier.disk_path.stat().st_size, now), disk)
    return WrittenOva(path=dest, size_bytes=writer.written, sha256=writer.digest.hexdigest())


def archive_format(largest_member_bytes: int) -> int:
    """ustar, as the standard asks; a member past ustar's 8 GiB needs GNU tar's base-256 size field
    (which every tar reader and the common importers take)."""
    return tarfile.GNU_FORMAT if largest_member_bytes > USTAR_MAX_BYTES else tarfile.USTAR_FORMAT


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    archive.addfile(_member(name, len(data), mtime), io.BytesIO(data))

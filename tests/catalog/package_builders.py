"""Building test packages: disks made with qemu-img, and .xvm2 and OVA archives written member by member.

Archives are written with ``tarfile`` from ``TarInfo`` objects, so a test can give a member any
name (a leading "/", "..") and any kind (links, devices, fifos) a hostile publisher could.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

STREAM_OPTIMIZED = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"


def qemu_img(*args: str | Path) -> None:
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True)


def make_disk(path: Path, disk_format: str = "qcow2", size: str = "16M") -> Path:
    """A blank disk of ``size`` in ``disk_format`` (a vmdk is streamOptimized, as OVAs carry them)."""
    if disk_format == "qcow2":
        qemu_img("create", "-f", "qcow2", path, size)
        return path
    source = path.with_name(path.name + ".source.qcow2")
    qemu_img("create", "-f", "qcow2", source, size)
    options = ["-o", "subformat=streamOptimized"] if disk_format == "vmdk" else []
    qemu_img("convert", "-f", "qcow2", "-O", disk_format, *options, source, path)
    source.unlink()
    return path


class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as they are read (for archives too large to hold in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


@dataclass
class Entry:
    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""
    size: int | None = None  # for a Zeros member: its size (data is then ignored)
    pax: dict[str, str] = field(default_factory=dict)


def regular(name: str, data: bytes) -> Entry:
    return Entry(name, data)


def zeros(name: str, size: int) -> Entry:
    return Entry(name, size=size)


def write_tar(
    path: Path, entries: Iterable[Entry], *, gzipped: bool = False, tar_format: int = tarfile.PAX_FORMAT
) -> Path:
    """The archive of ``entries``, names exactly as given (a leading "/" kept), gzipped if asked."""
    with path.open("wb") as raw:
        out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if gzipped else raw
        with tarfile.open(fileobj=out, mode="w|", format=tar_format) as tar:
            for entry in entries:
                info = tarfile.TarInfo(entry.name)
                info.type = entry.kind
                info.linkname = entry.linkname
                info.mode = 0o644
                info.pax_headers = dict(entry.pax)
                if entry.kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    info.devmajor, info.devminor = 1, 3
                content: io.IOBase | None = None
                if entry.kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.GNUTYPE_SPARSE):
                    if entry.size is not None:
                        info.size, content = entry.size, Zeros(entry.size)
                    else:
                        info.size, content = len(entry.data), io.BytesIO(entry.data)
                tar.addfile(info, content)
        if gzipped:
            out.close()
    return path


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6)


# Archipel ---------------------------------------------------------------------------------------


def domain_xml(
    *,
    disk_path: str = "/vm/drives/8a7d/disk0.qcow2",
    disk_format: str = "qcow2",
    vcpus: int = 2,
    memory: str = "524288",
    memory_unit: str = "KiB",
    devices: str = "",
    extra: str = "",
    prologue: str = "",
) -> bytes:
    """An Archipel description.xml: a libvirt domain whose first disk is ``disk_path``."""
    driver = f"<driver name='qemu' type='{disk_format}'/>" if disk_format else ""
    return (
        f"{prologue}<domain type='kvm' xmlns:qemu='{QEMU_NAMESPACE}'>"
        "<name>8a7d</name><uuid>8a7d0000-0000-4000-8000-000000000000</uuid>"
        f"<memory unit='{memory_unit}'>{memory}</memory><vcpu>{vcpus}</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os>"
        "<devices>"
        f"<disk type='file' device='disk'>{driver}<source file='{disk_path}'/><target dev='vda' bus='virtio'/></disk>"
        f"{devices}"
        "</devices>"
        f"{extra}"
        "</domain>"
    ).encode()


def xvm2(
    path: Path,
    disk: Path,
    *,
    description: bytes | None = None,
    member: str = "/disk0.qcow2.gz",
    gzip_package: bool = False,
    extra: Iterable[Entry] = (),
    first: Iterable[Entry] = (),
) -> Path:
    """An Archipel package: description.xml, then the disk (gzipped when ``member`` ends in .gz)."""
    data = disk.read_bytes()
    entries = [
        *first,
        regular("/description.xml", description if description is not None else domain_xml()),
        regular(member, gzipped(data) if member.endswith(".gz") else data),
        *extra,
    ]
    return write_tar(path, entries, gzipped=gzip_package)


# OVA --------------------------------------------------------------------------------------------


def ovf_xml(
    *,
    href: str = "disk1.vmdk",
    format_uri: str = STREAM_OPTIMIZED,
    vcpus: int = 2,
    memory: int = 1024,
    units: str = "byte * 2^20",
    systems: int = 1,
    compression: str = "",
    prologue: str = "",
) -> bytes:
    """An OVF 1.x descriptor of ``systems`` virtual machines (a VirtualSystemCollection when more than one)."""
    compressed = f" ovf:compression='{compression}'" if compression else ""

    def system(index: int) -> str:
        return (
            f"<VirtualSystem ovf:id='vm{index}'><Info>A machine</Info>"
            "<VirtualHardwareSection><Info>Hardware</Info>"
            f"<Item><rasd:ElementName>{vcpus} CPUs</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>"
            f"<rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>{vcpus}</rasd:VirtualQuantity></Item>"
            f"<Item><rasd:AllocationUnits>{units}</rasd:AllocationUnits><rasd:ElementName>Memory</rasd:ElementName>"
            "<rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>"
            f"<rasd:VirtualQuantity>{memory}</rasd:VirtualQuantity></Item>"
            "<Item><rasd:ElementName>Disk</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>"
            "<rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>"
            "</VirtualHardwareSection></VirtualSystem>"
        )

    body = (
        system(0)
        if systems == 1
        else (
            "<VirtualSystemCollection ovf:id='stack'><Info>Several</Info>"
            + "".join(system(i) for i in range(systems))
            + "</VirtualSystemCollection>"
        )
    )
    head = prologue or "<?xml version='1.0' encoding='UTF-8'?>"
    return (
        f"{head}<Envelope xmlns='http://schemas.dmtf.org/ovf/envelope/1' "
        "xmlns:ovf='http://schemas.dmtf.org/ovf/envelope/1' "
        "xmlns:rasd='http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData'>"
        f"<References><File ovf:id='file1' ovf:href='{href}'{compressed}/></References>"
        "<DiskSection><Info>Disks</Info>"
        f"<Disk ovf:diskId='vmdisk1' ovf:fileRef='file1' ovf:capacity='16777216' ovf:format='{format_uri}'/>"
        "</DiskSection>"
        f"{body}"
        "</Envelope>"
    ).encode()


def manifest(files: dict[str, bytes], *, algorithm: str = "SHA256") -> bytes:
    """A .mf: one "SHA256(name)= digest" line per file."""
    digest = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}[algorithm]
    return "".join(f"{algorithm}({name})= {digest(data).hexdigest()}\n" for name, data in files.items()).encode()


def ova(
    path: Path,
    disk: Path,
    *,
    descriptor: bytes | None = None,
    disk_member: str = "disk1.vmdk",
    algorithm: str | None = "SHA256",
    manifest_text: bytes | None = None,
    gzip_disk: bool = False,
    extra: Iterable[Entry] = (),
    order: str = "ovf,mf,disk,extra",
) -> Path:
    """An OVA: the .ovf, its manifest (unless ``algorithm`` is None), then the disk and ``extra``."""
    ovf = descriptor if descriptor is not None else ovf_xml(compression="gzip" if gzip_disk else "")
    data = gzipped(disk.read_bytes()) if gzip_disk else disk.read_bytes()
    extra = list(extra)
    files = {"appliance.ovf": ovf, disk_member: data} | {e.name: e.data for e in extra}
    parts = {
        "ovf": [regular("appliance.ovf", ovf)],
        "mf": [],
        "disk": [regular(disk_member, data)],
        "extra": extra,
    }
    if algorithm is not None or manifest_text is not None:
        parts["mf"] = [regular("appliance.mf", manifest_text or manifest(files, algorithm=algorithm or "SHA256"))]
    return write_tar(path, [entry for key in order.split(",") for entry in parts[key]], tar_format=tarfile.USTAR_FORMAT)

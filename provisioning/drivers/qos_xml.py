"""Writes a ``DomainQos`` into domain XML, in libvirt's own elements.

``<iotune>`` on the guest's own disk (vda; the read-only config drive is left alone),
``<bandwidth>`` on each stack network NIC (the published-port NIC is qemu's own and libvirt cannot
shape it), ``<cputune>`` with ``<shares>`` and one ``<vcpupin>`` per pinned vCPU. Every value is
checked first: a nonsense limit raises ``InvalidRequest`` instead of reaching libvirt, which would
either refuse the domain with a message we must not show or, worse, accept a limit of zero.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provisioning.drivers.errors import InvalidRequest
from provisioning.drivers.qos_types import DomainQos

# Upper bounds well past any real device (QEMU's own throttle maximum is 1e15), low enough to catch
# a unit mistake (bits for bytes, bytes for KiB) or an overflowed number.
MAX_BYTES_SEC = 10**12  # 1 TB/s
MAX_IOPS_SEC = 10**8
MAX_KIB_SEC = 10**9  # about 1 TB/s; libvirt's <bandwidth> counts KiB/s
# cgroup v1's cpu.shares range, which libvirt maps onto cgroup v2's weights.
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144
MAX_HOST_CPU = 4095

_TOTAL_AND_SPLIT = (
    ("total_bytes_sec", ("read_bytes_sec", "write_bytes_sec")),
    ("total_iops_sec", ("read_iops_sec", "write_iops_sec")),
)


def _positive(what: str, value: object, maximum: int) -> str:
    # bool is an int to Python; True as a limit is a bug, not one byte per second.
    if type(value) is not int or not 0 < value <= maximum:
        raise InvalidRequest(f"invalid {what} {value!r}: a whole number from 1 to {maximum}")
    return str(value)


def validate_qos(qos: DomainQos, *, vcpus: int | None = None) -> None:
    """Raise ``InvalidRequest`` unless every limit of ``qos`` is one libvirt can apply as meant."""
    limits = qos.disk_limits
    for name, value in limits.items():
        _positive(f"disk limit {name}", value, MAX_IOPS_SEC if "iops" in name else MAX_BYTES_SEC)
    for total, split in _TOTAL_AND_SPLIT:
        if total in limits and any(name in limits for name in split):
            raise InvalidRequest(f"a disk's {total} cannot be given with {' or '.join(split)}")
    for what, rate in (("inbound", qos.net_inbound_kib_sec), ("outbound", qos.net_outbound_kib_sec)):
        if rate is not None:
            _positive(f"network {what} limit (KiB/s)", rate, MAX_KIB_SEC)
    if qos.cpu_shares is not None and (
        type(qos.cpu_shares) is not int or not MIN_CPU_SHARES <= qos.cpu_shares <= MAX_CPU_SHARES
    ):
        raise InvalidRequest(f"invalid CPU shares {qos.cpu_shares!r}: from {MIN_CPU_SHARES} to {MAX_CPU_SHARES}")
    for cpu in qos.pinned_cpus:
        if type(cpu) is not int or not 0 <= cpu <= MAX_HOST_CPU:
            raise InvalidRequest(f"invalid physical CPU {cpu!r} to pin to")
    if len(set(qos.pinned_cpus)) != len(qos.pinned_cpus):
        raise InvalidRequest("two vCPUs cannot be pinned to one dedicated CPU")
    if vcpus is not None and qos.pinned_cpus and len(qos.pinned_cpus) != vcpus:
        raise InvalidRequest(f"{len(qos.pinned_cpus)} pinned CPUs for {vcpus} vCPUs: each vCPU needs one")


def _current_vcpus(domain: ET.Element) -> int | None:
    vcpu = domain.find("vcpu")
    if vcpu is None:
        return None
    try:
        return int(vcpu.get("current") or vcpu.text or "")
    except ValueError:
        return None


def _guest_disk(domain: ET.Element) -> ET.Element | None:
    for disk in domain.iterfind("devices/disk"):
        target = disk.find("target")
        if target is not None and target.get("dev") == "vda":
            return disk
    return None


def _add_iotune(domain: ET.Element, qos: DomainQos) -> None:
    limits = qos.disk_limits
    if not limits:
        return
    disk = _guest_disk(domain)
    if disk is None:
        raise InvalidRequest("a disk limit needs the guest's disk (vda) in the domain")
    iotune = ET.SubElement(disk, "iotune")
    for name, value in limits.items():
        ET.SubElement(iotune, name).text = str(value)


def _add_bandwidth(domain: ET.Element, qos: DomainQos) -> None:
    directions = {"inbound": qos.net_inbound_kib_sec, "outbound": qos.net_outbound_kib_sec}
    if all(value is None for value in directions.values()):
        return
    for interface in domain.iterfind("devices/interface[@type='network']"):
        bandwidth = ET.SubElement(interface, "bandwidth")
        for direction, value in directions.items():
            if value is not None:
                ET.SubElement(bandwidth, direction, {"average": str(value)})


def _add_cputune(domain: ET.Element, qos: DomainQos) -> None:
    if qos.cpu_shares is None and not qos.pinned_cpus:
        return
    cputune = ET.SubElement(domain, "cputune")
    if qos.cpu_shares is not None:
        ET.SubElement(cputune, "shares").text = str(qos.cpu_shares)
    for vcpu, cpu in enumerate(qos.pinned_cpus):
        ET.SubElement(cputune, "vcpupin", {"vcpu": str(vcpu), "cpuset": str(cpu)})


def add_qos(domain: ET.Element, qos: DomainQos) -> None:
    """Add ``qos``'s limits to the domain element (its devices already in place); none, no element."""
    validate_qos(qos, vcpus=_current_vcpus(domain))
    _add_iotune(domain, qos)
    _add_bandwidth(domain, qos)
    _add_cputune(domain, qos)

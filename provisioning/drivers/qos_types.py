"""Quality of service a domain is defined with: libvirt's ``<iotune>``, ``<bandwidth>`` and ``<cputune>``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DomainQos:
    """Limits written into a domain's XML; None (or empty) is no limit."""

    disk_read_bytes_sec: int | None = None
    disk_write_bytes_sec: int | None = None
    disk_read_iops_sec: int | None = None
    disk_write_iops_sec: int | None = None
    net_inbound_kib_sec: int | None = None  # average, on its stack network NIC
    net_outbound_kib_sec: int | None = None
    cpu_shares: int | None = None
    pinned_cpus: tuple[int, ...] = field(default_factory=tuple)  # vCPU n runs on pinned_cpus[n]

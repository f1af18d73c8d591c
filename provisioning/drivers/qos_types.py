"""Quality of service a domain is defined with: libvirt's ``<iotune>``, ``<bandwidth>`` and ``<cputune>``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DomainQos:
    """Limits written into a domain's XML; None (or empty) is no limit.

    libvirt refuses a total disk limit next to a read or write one of the same kind (bytes or
    operations), so a ``DomainQos`` holds either the total or the read/write pair of each kind.
    """

    disk_read_bytes_sec: int | None = None
    disk_write_bytes_sec: int | None = None
    disk_total_bytes_sec: int | None = None
    disk_read_iops_sec: int | None = None
    disk_write_iops_sec: int | None = None
    disk_total_iops_sec: int | None = None
    net_inbound_kib_sec: int | None = None  # average, on its stack network NIC
    net_outbound_kib_sec: int | None = None
    cpu_shares: int | None = None
    pinned_cpus: tuple[int, ...] = field(default_factory=tuple)  # vCPU n runs on pinned_cpus[n]

    @property
    def disk_limits(self) -> dict[str, int]:
        """The ``<iotune>`` children that are set, by libvirt's element name."""
        named = {
            "total_bytes_sec": self.disk_total_bytes_sec,
            "read_bytes_sec": self.disk_read_bytes_sec,
            "write_bytes_sec": self.disk_write_bytes_sec,
            "total_iops_sec": self.disk_total_iops_sec,
            "read_iops_sec": self.disk_read_iops_sec,
            "write_iops_sec": self.disk_write_iops_sec,
        }
        return {name: value for name, value in named.items() if value is not None}

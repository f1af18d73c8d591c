"""The libvirt side of ``MetricsOps``: every domain's figures in one bulk call, and the host's totals.

The domains come from ``virConnectGetAllDomainStats``, one round trip whatever their number, as
flat records of typed keys (libvirt's "domain statistics" reference)::

    state.state             running, paused, shut off ...
    cpu.time                ns of CPU, the guest's QEMU as a whole
    vcpu.current            vCPUs online
    balloon.current         KiB given to the guest
    balloon.rss             KiB QEMU holds on the host
    balloon.available/unused  KiB as the guest's balloon driver reports them (when it does)
    block.count, block.<n>.name, block.<n>.rd.bytes, block.<n>.wr.bytes
    net.count, net.<n>.rx.bytes, net.<n>.tx.bytes

A driver leaves out the keys it does not keep (libvirt's test driver gives only ``state.*``): each
figure is then ``None``. The host's CPU comes from ``virNodeGetCPUStats`` and its memory from
``virNodeGetMemoryStats``; a driver without the latter (``VIR_ERR_NO_SUPPORT``) is read through
``virNodeGetInfo`` and ``virNodeGetFreeMemory`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import libvirt

from provisioning.drivers.domain_xml import CONFIG_DRIVE_TARGET
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import has_code
from provisioning.drivers.metrics_types import DomainMetrics, HostMetrics, MetricsSample

_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_BLOCK
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
)
_RUNNING = frozenset({libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED})  # blocked: running, idle
# The config drive (``domain_xml._add_config_drive``): read once at boot, never written; its reads
# are the portal's, not the workload's.
_KIB_PER_MIB = 1024
_BYTES_PER_MIB = 1024 * 1024

Stats = Mapping[str, object]


def _int(stats: Stats, key: str) -> int | None:
    value = stats.get(key)
    return int(value) if isinstance(value, int) else None


def _mib(kib: int | None) -> int | None:
    return None if kib is None else kib // _KIB_PER_MIB


def _memory_used_kib(stats: Stats) -> int | None:
    available, unused = _int(stats, "balloon.available"), _int(stats, "balloon.unused")
    if available is not None and unused is not None and unused <= available:
        return available - unused  # the guest's own view: what its programs and caches hold
    rss, given = _int(stats, "balloon.rss"), _int(stats, "balloon.current")
    if rss is None or given is None:
        return rss
    # QEMU's resident set: what the guest touched, plus QEMU's own memory (under TCG its translated
    # code, tens of MiB: measured 235 MiB for a 128 MiB guest). The guest uses at most what it was given.
    return min(rss, given)


def _summed(stats: Stats, group: str, counter: str, *, skip_names: frozenset[str] = frozenset()) -> int | None:
    """``counter`` summed over the devices of ``group`` ("block", "net"); None if the group is not counted."""
    count = _int(stats, f"{group}.count")
    if count is None:
        return None
    total = 0
    for index in range(count):
        if stats.get(f"{group}.{index}.name") in skip_names:
            continue
        total += _int(stats, f"{group}.{index}.{counter}") or 0
    return total


def domain_metrics(stats: Stats) -> DomainMetrics:
    """One bulk-stats record as ``DomainMetrics``."""
    disks = {"skip_names": frozenset({CONFIG_DRIVE_TARGET})}
    return DomainMetrics(
        running=stats.get("state.state") in _RUNNING,
        vcpus=_int(stats, "vcpu.current"),
        cpu_time_ns=_int(stats, "cpu.time"),
        memory_mib=_mib(_int(stats, "balloon.current")),
        memory_used_mib=_mib(_memory_used_kib(stats)),
        disk_read_bytes=_summed(stats, "block", "rd.bytes", **disks),
        disk_write_bytes=_summed(stats, "block", "wr.bytes", **disks),
        net_rx_bytes=_summed(stats, "net", "rx.bytes"),
        net_tx_bytes=_summed(stats, "net", "tx.bytes"),
    )


def _cpu_times(cpu: Mapping[str, int]) -> tuple[int | None, int | None]:
    """(busy, total) ns from ``virNodeGetCPUStats``' fields; (None, None) if it gives no idle time."""
    if "idle" not in cpu:
        return None, None  # some drivers give only a single "utilization" figure
    idle = cpu["idle"] + cpu.get("iowait", 0)
    busy = sum(value for key, value in cpu.items() if key not in {"idle", "iowait", "utilization"})
    return busy, busy + idle


class LibvirtMetrics(LibvirtConnection):
    """Part of ``LibvirtDriver``."""

    def sample_metrics(self, *, names: list[str]) -> MetricsSample:
        wanted = set(names)
        with self._call("read domain statistics") as conn:
            records = conn.getAllDomainStats(_STATS, 0) if wanted else []
            domains = {domain.name(): stats for domain, stats in records}
            host = self._host_metrics(conn)
        return MetricsSample(
            host=host,
            domains={name: domain_metrics(stats) for name, stats in domains.items() if name in wanted},
        )

    @staticmethod
    def _host_metrics(conn: libvirt.virConnect) -> HostMetrics:
        _model, memory_mib, cpus, *_topology = conn.getInfo()
        busy, total = _cpu_times(conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS))
        try:
            memory = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
        except libvirt.libvirtError as exc:
            if not has_code(exc, libvirt.VIR_ERR_NO_SUPPORT):
                raise
            memory = {}  # the driver keeps no memory statistics: its node's figures below
        if "total" in memory and "free" in memory:
            memory_mib = memory["total"] // _KIB_PER_MIB
            reclaimable = memory.get("buffers", 0) + memory.get("cached", 0)
            free_mib = (memory["free"] + reclaimable) // _KIB_PER_MIB
        else:
            free_mib = conn.getFreeMemory() // _BYTES_PER_MIB
        return HostMetrics(
            cpus=cpus,
            cpu_busy_ns=busy,
            cpu_total_ns=total,
            memory_mib=memory_mib,
            memory_free_mib=free_mib,
            domains_running=conn.numOfDomains(),
        )


__all__ = ["LibvirtMetrics", "domain_metrics"]

"""What the driver offers the sampler: every domain's and the host's figures, in one call per host.

Counters are cumulative, as libvirt keeps them: CPU time since the guest's QEMU started, bytes since
its devices appeared. A figure the host's driver does not keep is ``None``, never a guessed zero, so
the sampler can tell "nothing happened" from "nobody counted" (libvirt's test driver, for one, keeps
only each domain's state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DomainMetrics:
    """One domain's figures at one moment."""

    running: bool  # its vCPUs run (paused or off: no)
    vcpus: int | None  # vCPUs it has now
    cpu_time_ns: int | None  # CPU time of the whole guest (its vCPUs and QEMU's own threads)
    memory_mib: int | None  # memory it was given (the balloon's current size)
    # Memory in use: what the guest reports through its balloon driver (available less unused), else
    # what QEMU holds for it on the host (resident set, at most ``memory_mib``); None when neither is known.
    memory_used_mib: int | None
    # Bytes its system disk read and wrote (the read-only config drive is left out); None: not counted.
    disk_read_bytes: int | None
    disk_write_bytes: int | None
    # Bytes through the NICs libvirt knows (stack networks), summed. A published port's user-mode NIC
    # is QEMU's alone (passed on its command line), so libvirt keeps no figures of it.
    net_rx_bytes: int | None
    net_tx_bytes: int | None


@dataclass(frozen=True)
class HostMetrics:
    """A host's totals at one moment."""

    cpus: int
    cpu_busy_ns: int | None  # cumulative CPU time not idle, every CPU; None: the host does not say
    cpu_total_ns: int | None  # cumulative CPU time, every CPU
    memory_mib: int
    # Memory free or given back at once when asked (page cache and buffers included where the host
    # tells them apart; else only what is free).
    memory_free_mib: int
    domains_running: int  # every running domain on the host, the portal's or not


@dataclass(frozen=True)
class MetricsSample:
    """What one call to a host read: the host's totals and each named domain it knows."""

    host: HostMetrics
    domains: dict[str, DomainMetrics]


class MetricsOps(Protocol):
    """Part of ``HypervisorDriver``."""

    def sample_metrics(self, *, names: list[str]) -> MetricsSample:
        """The host's totals and the figures of each named domain, read in one bulk call.

        Names the host does not know are left out of ``domains``; ``NotFound`` is never raised. A host
        that cannot be reached raises ``HostUnreachable``.
        """
        ...


__all__ = ["DomainMetrics", "HostMetrics", "MetricsOps", "MetricsSample"]

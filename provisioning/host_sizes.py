"""How big a host is and how much of it placement may hand out, in words that show the overcommit.

A host with 2 CPUs and a CPU overcommit of 4 offers 8 vCPUs: showing only "8 vCPUs" (or only
"2 CPUs") leaves the reader to guess why two pages disagree. Every figure here therefore reads as
its sum: physical size, what is held back, the factor, and what that leaves to place. The sums are
those of ``provisioning.placement_sql.capacities`` (floored as placement compares them), so the
words and the placement that acts on them cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from provisioning.models import Host
from provisioning.placement import HostLoad, host_loads

GIB = 1024**3
# Typeset signs: the sums read as arithmetic, not as the letter x and a hyphen.
TIMES = "\u00d7"
MINUS = "\u2212"


def factor_text(factor: Decimal) -> str:
    """``4``, ``1.5``: an overcommit factor without trailing zeros."""
    return f"{factor.normalize():f}"


def vcpu_sum(host: Host) -> str:
    """``2 CPUs x 4 overcommit = 8 vCPUs to place`` (with a real times sign)."""
    cpus = "1 CPU" if host.cpus == 1 else f"{host.cpus} CPUs"
    placed = int(host.cpus * host.cpu_overcommit)
    return f"{cpus} {TIMES} {factor_text(host.cpu_overcommit)} overcommit = {placed} vCPUs to place"


def memory_sum(host: Host) -> str:
    """``4096 MiB - 512 MiB kept for the host, x 1 overcommit = 3584 MiB to place``."""
    usable = max(0, host.memory_mib - host.memory_reserved_mib)
    placed = int(usable * host.memory_overcommit)
    return (
        f"{host.memory_mib} MiB {MINUS} {host.memory_reserved_mib} MiB kept for the host, "
        f"{TIMES} {factor_text(host.memory_overcommit)} overcommit = {placed} MiB to place"
    )


def disk_sum(host: Host) -> str:
    """``100 GiB pool x 1 overcommit = 100 GiB to place``; a pool of unknown size is not a limit."""
    if not host.pool_capacity_bytes:
        return "storage pool size unknown: disk is not limited"
    pool_gib = host.pool_capacity_bytes // GIB
    placed = int(Decimal(host.pool_capacity_bytes) * host.disk_overcommit // GIB)
    return f"{pool_gib} GiB pool {TIMES} {factor_text(host.disk_overcommit)} overcommit = {placed} GiB to place"


def takes_launches(host: Host) -> bool:
    """Whether placement may put a new stack on the host (``placement_sql.USABLE``)."""
    return host.enabled and host.healthy and not host.draining and not host.maintenance


def state_words(host: Host) -> str:
    """The host's state as one phrase; a draining host never reads as taking launches."""
    if not host.enabled:
        return "disabled: takes no new stacks"
    if not host.healthy:
        return "unhealthy: takes no new stacks"
    if host.draining:
        return "draining: keeps its stacks, takes no new ones"
    return "healthy: takes new stacks"


@dataclass(frozen=True)
class Allocation:
    """One resource of a host: what placement handed out of what it may hand out, and how that is reached."""

    what: str
    used: int
    capacity: int | None  # None: not limited (a storage pool of unknown size)
    unit: str
    sum: str

    @property
    def text(self) -> str:
        if self.capacity is None:
            return f"{self.used} {self.unit}"
        return f"{self.used} of {self.capacity} {self.unit}"


@dataclass(frozen=True)
class HostSize:
    """A row of the Hosts page."""

    host: Host
    instances: int
    allocations: list[Allocation]

    @property
    def takes_launches(self) -> bool:
        return takes_launches(self.host)

    @property
    def state(self) -> str:
        return state_words(self.host)


def _size(load: HostLoad) -> HostSize:
    host = load.host
    return HostSize(
        host=host,
        instances=load.instances,
        allocations=[
            Allocation("vCPUs", load.vcpus, load.vcpu_capacity, "vCPUs", vcpu_sum(host)),
            Allocation("Memory", load.memory_mib, load.memory_capacity_mib, "MiB", memory_sum(host)),
            Allocation("Disk", load.disk_gib, load.disk_capacity_gib, "GiB", disk_sum(host)),
        ],
    )


def host_sizes() -> list[HostSize]:
    """Every host, by name, with its load and the sums behind its capacities (one query)."""
    return [_size(load) for load in host_loads()]


def launch_summary(sizes: list[HostSize]) -> str:
    """One sentence on how many hosts take new stacks; draining, disabled and unhealthy ones do not."""
    taking = sum(1 for size in sizes if size.takes_launches)
    if not sizes:
        return "There are no hosts: no stack can be launched."
    if taking == len(sizes):
        return "Every host takes new stacks."
    if taking == 0:
        return "No host takes new stacks: launches fail until one is undrained, enabled or repaired."
    return f"{taking} of {len(sizes)} hosts take new stacks."

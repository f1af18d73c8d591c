"""What a stack asks of a host and of its project's quota, before anything is made.

Built from a validated template (``provisioning.templates``) by the launch service and handed to
placement (``claim_host``) and to the quota check, so both judge the whole stack at once.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class InstanceDemand:
    tier: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    arch: str = "x86_64"
    # The libvirt domain type the guest needs ("kvm" for hardware virtualisation); None: any host's.
    domain_type: str | None = None


@dataclass(frozen=True)
class StackDemand:
    instances: tuple[InstanceDemand, ...]
    lease_seconds: int

    @property
    def vcpus(self) -> int:
        return sum(item.vcpus for item in self.instances)

    @property
    def memory_mib(self) -> int:
        return sum(item.memory_mib for item in self.instances)

    @property
    def disk_gib(self) -> int:
        return sum(item.disk_gib for item in self.instances)

    @property
    def arches(self) -> frozenset[str]:
        return frozenset(item.arch for item in self.instances)

    @property
    def domain_types(self) -> frozenset[str]:
        """The domain types some tier insists on (every tier runs on the one host, so at most one can be met)."""
        return frozenset(item.domain_type for item in self.instances if item.domain_type)

    def describe(self) -> str:
        """The whole stack's size as messages name it: ``3 vCPU and 384 MiB of memory plus 30 GiB of disk``."""
        size = f"{self.vcpus} vCPU and {self.memory_mib} MiB of memory"
        return f"{size} plus {self.disk_gib} GiB of disk" if self.disk_gib else size

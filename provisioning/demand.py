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

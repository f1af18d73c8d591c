"""What the driver offers for changing a domain's vCPUs, memory and disk size.

The driver does what it is told and reports what the domain allows; choosing between now and the
next start is the resize service's (``provisioning.services.resize``). Every change reaches the
domain's definition too, so its next start has the new size whichever way it went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DomainSize:
    """A domain's size as its host sees it: while it runs, what it has now and how far it may go
    without a restart; while it is off, its definition (what its next start gets)."""

    running: bool
    vcpus: int
    max_vcpus: int  # the most vCPUs it may be given while it runs (``<vcpu current=...>MAX</vcpu>``)
    memory_mib: int  # what the guest has now (after its balloon, if it has one)
    max_memory_mib: int  # the most memory it may be given while it runs


class ResizeOps(Protocol):
    """Part of ``HypervisorDriver``."""

    def domain_size(self, *, name: str) -> DomainSize: ...

    def set_vcpus(self, *, name: str, vcpus: int, maximum: int, live: bool) -> None:
        """Define ``vcpus`` (room for ``maximum`` while running) for the next start; with ``live``, plug or
        unplug them in the running guest first.

        ``Unsupported`` or ``InvalidRequest`` when the host or the guest cannot change them live: the
        definition is then left as it was, for the caller to set without ``live``.
        """
        ...

    def set_memory(self, *, name: str, memory_mib: int, live: bool, wait_seconds: float) -> bool:
        """Define ``memory_mib`` for the next start; with ``live``, also ask the running guest to take it
        (its memory balloon) and wait up to ``wait_seconds`` for it to get there.

        True when the guest got there. False when it has no balloon or did not honour it: the live
        target is put back as it was (the definition has the new size all the same).
        """
        ...

    def grow_disk(self, *, name: str, device: str, pool: str, volume: str, size_bytes: int) -> None:
        """Grow a disk to ``size_bytes``: the running domain's ``device`` (its guest sees the new size at
        once, and the volume grows with it), or, while it is off, the ``volume`` itself.

        ``Unsupported`` when the host cannot grow disks; ``InvalidRequest`` for a size below the disk's.
        """
        ...

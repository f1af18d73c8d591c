"""What the driver offers for moving a running domain to another host (live migration)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # base imports this module: the names are only needed for the annotations
    from collections.abc import Callable, Sequence

    from provisioning.drivers.base import DomainInfo, DriverError, PortForward, ProgressCallback

    Arrived = Callable[[str, DomainInfo], None]
    """Called as ``arrived(name, info)`` as each domain comes up on its new host."""


@dataclass(frozen=True)
class DestinationLayout:
    """Where a domain's host-side pieces are on the host it moves to (everything else stays as it is).

    Two hosts never share paths, ports or a VNC address, so each is named again for the target. The
    stack network keeps its name: the target's own network of that name brings its own bridge.
    """

    disk_paths: tuple[tuple[str, str], ...]  # (target device "vda", its file on the new host)
    vnc_listen: str
    console_log_path: str | None = None
    port_forwards: tuple[PortForward, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class MigrationRequest:
    name: str  # the domain, running on this host
    layout: DestinationLayout
    # The target's address for QEMU's memory stream and for the copy of the disks (NBD).
    migration_address: str
    # The devices whose contents are copied: the writable disks only (a read-only config drive is
    # uploaded to the target beforehand). The target has each one already, empty over its base image.
    copied_disks: tuple[str, ...] = ("vda",)
    bandwidth_mib_sec: int = 0  # 0: as fast as the link allows
    timeout_seconds: int = 600  # after this the migration is cancelled and the domain stays here


class MigrationOps(Protocol):
    """Part of ``HypervisorDriver``."""

    def supports_live_migration(self) -> bool:
        """Whether this host's hypervisor can send or receive a running domain (libvirt's own mechanism)."""
        ...

    def migrate_domain(
        self, request: MigrationRequest, *, target: MigrationOps, progress: ProgressCallback | None = None
    ) -> DomainInfo:
        """Move the running domain to ``target``'s host, live, copying its writable disks there.

        ``progress(done, total)`` reports the bytes sent (memory and disks) while it runs. On success
        the domain runs and is defined on the target and is gone from here (its disks stay, for the
        caller to delete). On failure (``DriverError``) it keeps running here; the target keeps
        nothing but what the caller made there. ``Unsupported`` when either host cannot migrate.
        """
        ...

    def migrate_domains(
        self,
        requests: Sequence[MigrationRequest],
        *,
        target: MigrationOps,
        progress: ProgressCallback | None = None,
        arrived: Arrived | None = None,
    ) -> dict[str, DomainInfo | DriverError]:
        """Move several running domains to ``target``'s host at once, each as ``migrate_domain`` does.

        For guests that must not be apart for long (a stack's tiers share a network that cannot span
        two hosts): their switch-overs land close together. ``progress`` reports the sum over all of
        them and, like ``arrived``, is called in the caller's thread. The answer gives each domain's
        outcome; one that failed keeps running here.
        """
        ...


__all__ = ["DestinationLayout", "MigrationOps", "MigrationRequest"]

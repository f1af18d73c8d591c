"""Typed interface between the portal and a hypervisor host.

Services build these dataclasses and call a ``HypervisorDriver``; they never see libvirt
objects or XML. Every failure is a ``DriverError`` that says whether trying again can help.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from provisioning.drivers.metrics_types import MetricsOps
from provisioning.drivers.migration_types import MigrationOps
from provisioning.drivers.qos_types import DomainQos
from provisioning.drivers.resize_types import ResizeOps

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done_bytes, total_bytes)`` during long transfers."""


# The errors are part of the driver's interface: named here as well, explicitly re-exported.
from provisioning.drivers.errors import DriverError as DriverError  # noqa: E402
from provisioning.drivers.errors import HostUnreachable as HostUnreachable  # noqa: E402
from provisioning.drivers.errors import InvalidRequest as InvalidRequest  # noqa: E402
from provisioning.drivers.errors import NotFound as NotFound  # noqa: E402
from provisioning.drivers.errors import PortUnavailable as PortUnavailable  # noqa: E402
from provisioning.drivers.errors import Unsupported as Unsupported  # noqa: E402


@dataclass(frozen=True)
class HostCapabilities:
    """What a host's hypervisor can do, so callers ask about abilities instead of driver names.

    Both are false only for simulated hosts (libvirt's ``test://`` driver), whose volumes keep no
    bytes and whose guests never run: there is nothing to upload and no port a guest could take.
    """

    stores_volume_data: bool  # volumes hold real bytes, so base images must be streamed into them
    guests_bind_host_ports: bool  # published ports are really bound on the host, so probing them means something


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    hypervisor: str  # libvirt's driver name: "QEMU", "TEST", ...
    libvirt_version: str  # "9.0.0"
    cpus: int
    memory_mib: int
    free_memory_mib: int
    capabilities: HostCapabilities
    guest_arches: tuple[str, ...] = ("x86_64",)  # what its guests may be, from libvirt's capabilities


@dataclass(frozen=True)
class PoolInfo:
    name: str
    path: str
    capacity_bytes: int
    available_bytes: int
    active: bool = True  # a stopped pool lists no volumes and takes none


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    path: str
    capacity_bytes: int
    disk_format: str
    allocation_bytes: int = 0  # what the volume takes in its pool now (a thin qcow2 grows towards capacity)


@dataclass(frozen=True)
class SnapshotInfo:
    """A libvirt snapshot of one domain."""

    name: str
    created_at: float  # seconds since the epoch, as libvirt records it
    with_memory: bool  # the guest's memory is in it, so a revert resumes the guest where it was


@dataclass(frozen=True)
class DomainTags:
    """Who owns a domain or volume; written into libvirt so the reconciler can find orphans.

    ``deployment`` is the portal installation (``PORTAL_DEPLOYMENT``): portals sharing a host
    each reconcile only what carries their own name.
    """

    deployment: str
    project_id: int
    stack_id: int
    instance_id: int


@dataclass(frozen=True)
class PortForward:
    """Publish ``guest_port`` of the guest on ``host_address:host_port`` of the hypervisor host."""

    host_port: int
    guest_port: int
    host_address: str = "127.0.0.1"
    protocol: str = "tcp"


@dataclass(frozen=True)
class StackNic:
    """A NIC on a stack's private network (an isolated libvirt network on the same host)."""

    network: str
    mac_address: str


@dataclass(frozen=True)
class DomainSpec:
    name: str
    domain_type: str  # "kvm" in production, "qemu" (TCG) where KVM cannot run guests
    vcpus: int
    memory_mib: int
    disk_path: str
    tags: DomainTags
    disk_format: str = "qcow2"
    arch: str = "x86_64"
    port_forwards: tuple[PortForward, ...] = field(default_factory=tuple)
    vnc: bool = True  # a VNC server (autoport) for the browser console, reached only through the portal's proxy
    # The host's management address: the VNC server listens only there (loopback for the local host).
    vnc_listen: str = "127.0.0.1"
    # The VNC password (at most 8 characters), known to the portal and its proxy only. None: no password.
    vnc_password: str | None = None
    # A read-only second disk (vdb): the NoCloud config drive the guest reads its identity from.
    config_drive_path: str | None = None
    stack_nics: tuple[StackNic, ...] = field(default_factory=tuple)
    # Where the host keeps what the guest writes to its serial console (appended, by libvirt's log
    # daemon): a file in the host's storage pool folder, so the portal reads it back through the
    # storage API (``read_console_log``) wherever the host is. None: the output is not kept.
    console_log_path: str | None = None
    # The most vCPUs it may take while it runs (``<vcpu current=vcpus>max_vcpus</vcpu>``); None: vcpus.
    max_vcpus: int | None = None
    qos: DomainQos = field(default_factory=DomainQos)


@dataclass(frozen=True)
class ConsoleLog:
    """The end of a domain's serial console log: what a console shows before its live output."""

    data: bytes  # the last bytes the guest wrote, raw (terminal control sequences included)
    size_bytes: int  # the whole log's size on the host
    truncated: bool  # earlier output was left out: ``data`` is the log's last bytes, not all of it


@dataclass(frozen=True)
class DomainInfo:
    name: str
    uuid: str
    state: str  # "running", "paused", "shutoff", "crashed", "other"
    tags: DomainTags | None
    vnc_port: int | None = None


@dataclass(frozen=True)
class DomainActivity:
    """One sample of what a domain is doing, for telling idle stacks from busy ones.

    Counters only mean something against an earlier sample of the same domain: CPU time grows while
    the guest runs (and starts again from zero when it boots again), and a connection is new when
    its name was not in the earlier sample.
    """

    cpu_time_ns: int  # CPU time the guest has used since it started, all vCPUs and QEMU's own threads
    running: bool  # its vCPUs run (a paused or stopped guest does nothing)
    # The TCP connections its published ports carry now, each named by the netdev and the host socket
    # that holds it ("pub0/22"), so a name not seen in the last sample is a new connection. None when
    # the host cannot tell (its driver has no QEMU monitor, or the guest's network is not QEMU's own).
    connections: frozenset[str] | None
    # Connections through its published ports that closed in the last seconds: QEMU keeps one about
    # ten seconds (TCP's TIME_WAIT), so a sample sees short requests it could not name as new (their
    # sockets, and so their names, are reused). 0 when unknown.
    recently_closed: int = 0


class ConsoleStream(Protocol):
    """A domain's serial console, opened through the hypervisor's own connection (no port on the host).

    ``read`` blocks until the guest writes; ``write`` and ``close`` may be called from other threads
    meanwhile, and ``close`` makes a blocked ``read`` return ``b""``.
    """

    def read(self, max_bytes: int) -> bytes:
        """The next bytes the guest wrote (at most ``max_bytes``); ``b""`` once the console has ended."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None:
        """End the console session; safe to call more than once."""
        ...


class HypervisorDriver(MigrationOps, ResizeOps, MetricsOps, Protocol):
    """What the portal needs from a host. Implementations must be safe to call repeatedly."""

    uri: str

    def host_info(self) -> HostInfo: ...

    def ensure_dir_pool(self, *, name: str, path: str) -> PoolInfo:
        """Return the storage pool ``name``; define, build and start it as a dir pool at ``path`` if missing."""
        ...

    def pool_info(self, *, name: str) -> PoolInfo:
        """Read a pool as it is, changing nothing (``NotFound`` if it does not exist)."""
        ...

    def find_volume(self, *, pool: str, name: str) -> VolumeInfo | None: ...

    def upload_volume(
        self,
        *,
        pool: str,
        name: str,
        source_path: str,
        disk_format: str,
        capacity_bytes: int,
        progress: ProgressCallback | None = None,
    ) -> VolumeInfo:
        """Create ``name`` in ``pool`` and stream the local file into it. A failed upload leaves no volume."""
        ...

    def create_overlay(
        self, *, pool: str, name: str, backing: VolumeInfo, capacity_bytes: int | None = None
    ) -> VolumeInfo:
        """Create a qcow2 volume whose ``<backingStore>`` is ``backing`` (copy-on-write)."""
        ...

    def delete_volume(self, *, pool: str, name: str) -> None:
        """Delete a volume; a missing one is not an error."""
        ...

    def list_volumes(self, *, pool: str) -> list[VolumeInfo]: ...

    def define_and_start(self, spec: DomainSpec) -> DomainInfo:
        """Define a persistent domain from ``spec`` and start it. If starting fails, nothing stays defined."""
        ...

    def destroy_domain(self, *, name: str) -> None:
        """Power off and undefine a domain; a missing one is not an error."""
        ...

    def domain_info(self, *, name: str) -> DomainInfo: ...

    def ensure_network(self, *, name: str, bridge: str) -> None:
        """Define, start and autostart an isolated network (no forwarding, no host address); no-op if running."""
        ...

    def delete_network(self, *, name: str) -> None:
        """Stop and undefine a network; a missing one is not an error."""
        ...

    def list_networks(self) -> list[str]:
        """Names of every network on the host."""
        ...

    def list_domains(self) -> list[DomainInfo]:
        """Every domain on the host that carries portal metadata tags, whichever deployment made it."""
        ...

    # Power. Every call names a domain defined by ``define_and_start``; ``NotFound`` if it is gone.
    def start_domain(self, *, name: str) -> DomainInfo:
        """Start a stopped domain (restoring its managed save, if it has one); no-op if it runs or is paused."""
        ...

    def shutdown_domain(self, *, name: str) -> None:
        """Ask the guest to power off (ACPI power button) and return at once; no-op if it is off.

        A paused guest is resumed first, so that it can hear the button.

        Whether the guest obeys is seen through ``domain_info``; callers force it off after a timeout.
        """
        ...

    def power_off_domain(self, *, name: str) -> None:
        """Cut the power (the domain stays defined, its disks untouched); no-op if it is off."""
        ...

    def reboot_domain(self, *, name: str) -> None:
        """Ask the guest to reboot (ACPI); if it has no way to be asked, reset it. ``InvalidRequest`` if it is off."""
        ...

    def pause_domain(self, *, name: str) -> None:
        """Stop the guest's vCPUs (its memory stays in place); no-op if it is paused or off."""
        ...

    def resume_domain(self, *, name: str) -> None:
        """Let a paused guest run again; no-op if it runs or is off."""
        ...

    def save_domain_memory(self, *, name: str) -> None:
        """Save the guest's memory on its host and stop it (a managed save): the next start resumes it, running.

        No-op if the guest is off. The save lives beside the domain on its host, outside any pool.
        """
        ...

    def discard_saved_memory(self, *, name: str) -> None:
        """Drop the domain's managed save, so its next start boots afresh; no-op if it has none."""
        ...

    def has_saved_memory(self, *, name: str) -> bool: ...

    def set_port_forwards(self, *, name: str, forwards: tuple[PortForward, ...]) -> None:
        """Publish a stopped domain's ports on other host ports from its next start (its managed save too).

        For a port something outside the portal took while the domain was off. ``InvalidRequest`` if
        it runs or publishes no ports.
        """
        ...

    # Snapshots, kept by libvirt inside the domain's qcow2 disks (internal snapshots).
    def create_snapshot(self, *, domain: str, name: str, memory: bool) -> SnapshotInfo:
        """Snapshot the domain's writable disks (and, with ``memory``, its memory) as ``name``.

        A running guest is snapshotted as it is; the caller pauses the guests it wants taken at one
        moment. ``Unsupported`` names what the host cannot do (a disk format without snapshots).
        QEMU keeps a running guest's internal snapshot only with its memory (savevm), so one asked
        without memory holds it anyway and is reverted with the guest off; a guest that is off gives
        a disks-only snapshot even when memory is asked. The answer's ``with_memory`` says which.
        """
        ...

    def revert_snapshot(self, *, domain: str, name: str) -> None:
        """Put the domain's disks (and memory, if the snapshot has it) back as they were in ``name``.

        A snapshot with memory leaves the domain paused where it was; one without leaves it off. A
        managed save is dropped first: its memory would not match the disks any more.
        """
        ...

    def delete_snapshot(self, *, domain: str, name: str) -> None:
        """Delete one snapshot (its data merged away); a missing one is not an error."""
        ...

    def list_snapshots(self, *, domain: str) -> list[SnapshotInfo]: ...

    def download_volume(self, *, pool: str, name: str, dest_path: str, progress: ProgressCallback | None = None) -> int:
        """Stream a volume's bytes into the local file ``dest_path``; return how many were written.

        The file appears only once complete (a failed download leaves none).
        """
        ...

    def domain_activity(self, *, names: list[str]) -> dict[str, DomainActivity]:
        """A sample of each named domain's activity, read in one call to the host (plus one monitor
        question per running domain for its connections).

        A name the host does not know is left out of the answer; ``NotFound`` is never raised.
        """
        ...

    def open_console(self, *, name: str) -> ConsoleStream:
        """Attach to the running domain's serial console, taking it over from any other session."""
        ...

    def read_console_log(self, *, pool: str, name: str, max_bytes: int) -> ConsoleLog:
        """The last ``max_bytes`` of the console log ``name`` (a file in ``pool``'s folder, see
        ``DomainSpec.console_log_path``). ``NotFound`` when there is none yet (the domain never ran with it).
        """
        ...

    def delete_console_log(self, *, pool: str, name: str) -> None:
        """Delete a console log and the older parts the host's log daemon rotated out of it.

        A missing one is not an error.
        """
        ...

    def close(self) -> None: ...

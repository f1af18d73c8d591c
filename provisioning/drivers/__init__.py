"""The hypervisor boundary: typed requests and answers, one libvirt implementation.

Only the ``libvirt_*`` modules of this package import ``libvirt``; everything else speaks in
the dataclasses and errors of ``provisioning.drivers.base``.
"""

from provisioning.drivers.base import (
    ConsoleLog,
    ConsoleStream,
    DomainInfo,
    DomainSpec,
    DomainTags,
    DriverError,
    HostCapabilities,
    HostInfo,
    HostUnreachable,
    HypervisorDriver,
    InvalidRequest,
    NotFound,
    PortForward,
    PortUnavailable,
    SnapshotInfo,
    StackNic,
    Unsupported,
    VolumeInfo,
)


def open_driver(uri: str) -> HypervisorDriver:
    """Open a driver for a libvirt URI (``qemu:///system``, ``qemu+ssh://h/system``, ``test:///default``)."""
    from provisioning.drivers.libvirt_driver import LibvirtDriver

    return LibvirtDriver(uri)


__all__ = [
    "ConsoleLog",
    "ConsoleStream",
    "DomainInfo",
    "DomainSpec",
    "DomainTags",
    "DriverError",
    "HostCapabilities",
    "HostInfo",
    "HostUnreachable",
    "HypervisorDriver",
    "InvalidRequest",
    "NotFound",
    "PortForward",
    "PortUnavailable",
    "SnapshotInfo",
    "StackNic",
    "Unsupported",
    "VolumeInfo",
    "open_driver",
]

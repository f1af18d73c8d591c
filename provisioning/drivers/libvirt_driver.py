"""``HypervisorDriver`` on top of libvirt-python.

It works the same on ``qemu:///system``, remote ``qemu+ssh://`` / ``qemu+tls://`` hosts and libvirt's
``test://`` driver: storage goes through libvirt's storage API only (the host may be remote), and every
``libvirtError`` is turned into one of the errors of ``provisioning.drivers.base``.

The driver is assembled from parts with one job each, sharing one connection:
``libvirt_connection`` (opening, reconnecting, host capabilities), ``libvirt_errors`` (error
translation), ``libvirt_storage`` (pools, volumes, uploads and downloads), ``libvirt_domains`` (domains),
``libvirt_power`` (power actions and managed saves), ``libvirt_snapshots`` (internal snapshots),
``libvirt_networks`` (stack networks), ``libvirt_console`` (serial consoles over libvirt streams),
``libvirt_console_log`` (what the serial consoles wrote, kept in the pool) ``libvirt_stats``
(activity samples: CPU time, state, connections through published ports), ``libvirt_migration`` (moving
running domains between hosts), ``libvirt_resize`` (vCPUs, memory, disk size) and ``libvirt_metrics``
(the sampler's figures). Only these modules import ``libvirt``.
"""

from __future__ import annotations

import libvirt

from provisioning.drivers.base import HostCapabilities, HostInfo
from provisioning.drivers.domain_xml import parse_guest_arches
from provisioning.drivers.libvirt_console import LibvirtConsoles
from provisioning.drivers.libvirt_console_log import LibvirtConsoleLogs
from provisioning.drivers.libvirt_domains import LibvirtDomains
from provisioning.drivers.libvirt_metrics import LibvirtMetrics
from provisioning.drivers.libvirt_migration import LibvirtMigration
from provisioning.drivers.libvirt_networks import LibvirtNetworks
from provisioning.drivers.libvirt_power import LibvirtPower
from provisioning.drivers.libvirt_resize import LibvirtResize
from provisioning.drivers.libvirt_snapshots import LibvirtSnapshots
from provisioning.drivers.libvirt_stats import LibvirtStats
from provisioning.drivers.libvirt_storage import LibvirtStorage
from provisioning.drivers.upload_stream import UPLOAD_CHUNK_BYTES

_MIB = 1024 * 1024
SIMULATED_GUEST_ARCHES = ("aarch64", "i686", "x86_64")


def _format_version(number: int) -> str:
    # libvirt encodes versions as major * 1_000_000 + minor * 1_000 + micro.
    return f"{number // 1_000_000}.{number // 1_000 % 1_000}.{number % 1_000}"


class LibvirtDriver(
    LibvirtStorage,
    LibvirtDomains,
    LibvirtPower,
    LibvirtSnapshots,
    LibvirtNetworks,
    LibvirtConsoles,
    LibvirtConsoleLogs,
    LibvirtStats,
    LibvirtMigration,
    LibvirtResize,
    LibvirtMetrics,
):
    """A ``HypervisorDriver`` for one libvirt URI; the connection opens on first use.

    Safe to share between threads (libvirt connections are). If the daemon restarted, the next call
    reconnects once; a call that loses the connection raises ``HostUnreachable`` and the one after
    it reconnects.
    """

    def host_info(self) -> HostInfo:
        capabilities = self._capabilities()
        with self._call("read host information") as conn:
            _model, memory_mib, cpus, *_topology = conn.getInfo()
            return HostInfo(
                hostname=conn.getHostname(),
                hypervisor=conn.getType(),
                libvirt_version=_format_version(conn.getLibVersion()),
                cpus=cpus,
                memory_mib=memory_mib,
                free_memory_mib=conn.getFreeMemory() // _MIB,
                capabilities=capabilities,
                guest_arches=self._guest_arches(conn, capabilities),
            )

    @staticmethod
    def _guest_arches(conn: libvirt.virConnect, capabilities: HostCapabilities) -> tuple[str, ...]:
        if not capabilities.stores_volume_data:
            # A simulated host defines domains of any architecture; it advertises only its own (i686).
            return SIMULATED_GUEST_ARCHES
        return parse_guest_arches(conn.getCapabilities())


__all__ = ["UPLOAD_CHUNK_BYTES", "LibvirtDriver"]

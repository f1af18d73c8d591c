"""Stack networks: isolated libvirt networks (no forwarding, no host address) that join a stack's guests."""

from __future__ import annotations

import libvirt

from provisioning.drivers.domain_xml import build_isolated_network_xml
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import Subject, none_if_missing


class LibvirtNetworks(LibvirtConnection):
    """Networks of one host (the network part of ``LibvirtDriver``)."""

    def ensure_network(self, *, name: str, bridge: str) -> None:
        """Define, start and autostart an isolated network; a network of that name already running is kept."""
        xml = build_isolated_network_xml(name, bridge)
        with self._call(f"set up network '{name}'", Subject(network=name)) as conn:
            network = none_if_missing(libvirt.VIR_ERR_NO_NETWORK, conn.networkLookupByName, name)
            if network is None:
                network = conn.networkDefineXML(xml)
            if not network.isActive():
                network.create()
            network.setAutostart(1)

    def delete_network(self, *, name: str) -> None:
        """Stop and undefine a network; a missing one is not an error."""
        with self._call(f"delete network '{name}'", Subject(network=name)) as conn:
            network = none_if_missing(libvirt.VIR_ERR_NO_NETWORK, conn.networkLookupByName, name)
            if network is None:
                return
            if network.isActive():
                network.destroy()
            none_if_missing(libvirt.VIR_ERR_NO_NETWORK, network.undefine)

    def list_networks(self) -> list[str]:
        with self._call("list networks") as conn:
            return sorted(network.name() for network in conn.listAllNetworks(0))


__all__ = ["LibvirtNetworks"]

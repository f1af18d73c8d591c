"""Domains: define and start from a ``DomainSpec``, read back, power off and undefine."""

from __future__ import annotations

import logging

import libvirt

from provisioning.drivers.base import DomainInfo, DomainSpec
from provisioning.drivers.domain_xml import build_domain_xml, parse_domain_tags, parse_vnc_port
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import (
    UNKNOWN_FLAG_CODES,
    Subject,
    has_code,
    libvirt_message,
    none_if_missing,
)

logger = logging.getLogger(__name__)

# Most thorough first: the test driver, for one, knows neither NVRAM nor checkpoints.
_UNDEFINE_FLAG_SETS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    0,
)
_STATE_NAMES = {
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",  # running, just idle in the hypervisor
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
}


def describe_domain(domain: libvirt.virDomain, xml: str | None = None) -> DomainInfo:
    """The ``DomainInfo`` of a libvirt domain (``xml``: its XML, if already read)."""
    # The live XML of a running domain carries the VNC port autoport picked.
    xml = domain.XMLDesc(0) if xml is None else xml
    state, _reason = domain.state()
    return DomainInfo(
        name=domain.name(),
        uuid=domain.UUIDString(),
        state=_STATE_NAMES.get(state, "other"),
        tags=parse_domain_tags(xml),
        vnc_port=parse_vnc_port(xml),
    )


def _tagged_domain_info(domain: libvirt.virDomain) -> DomainInfo | None:
    xml = domain.XMLDesc(0)
    if parse_domain_tags(xml) is None:
        return None  # not made by a portal
    return describe_domain(domain, xml)


def _power_off(domain: libvirt.virDomain) -> None:
    try:
        if domain.isActive():
            domain.destroy()
    except libvirt.libvirtError as exc:
        # It may have stopped, or (if transient) vanished, since we looked.
        if not has_code(exc, libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
            raise


def _undefine(domain: libvirt.virDomain) -> None:
    for attempt, flags in enumerate(_UNDEFINE_FLAG_SETS, start=1):
        try:
            if flags:
                domain.undefineFlags(flags)
            else:
                domain.undefine()  # the plain entry point, for drivers without undefineFlags
            return
        except libvirt.libvirtError as exc:
            if has_code(exc, libvirt.VIR_ERR_NO_DOMAIN):
                return  # a transient domain is gone once destroyed
            if attempt == len(_UNDEFINE_FLAG_SETS) or not has_code(exc, *UNKNOWN_FLAG_CODES):
                raise


class LibvirtDomains(LibvirtConnection):
    """Domains of one host (the compute half of ``LibvirtDriver``)."""

    def define_and_start(self, spec: DomainSpec) -> DomainInfo:
        """Define a persistent domain from ``spec`` and start it. If starting fails, nothing stays defined."""
        xml = build_domain_xml(spec)
        subject = Subject(domain=spec.name)
        # The XML carries no UUID, so libvirt refuses a name that is taken instead of redefining it.
        with self._call(f"define domain '{spec.name}'", subject) as conn:
            domain = conn.defineXML(xml)
        with self._call(f"start domain '{spec.name}'", subject):
            try:
                domain.create()
            except BaseException:
                self._remove_quietly(domain)
                raise
            return describe_domain(domain)

    def _remove_quietly(self, domain: libvirt.virDomain) -> None:
        try:
            _power_off(domain)
            _undefine(domain)
        except libvirt.libvirtError as exc:
            # The reconciler finds the leftover by its metadata tags.
            logger.warning("host %s: could not remove domain after failed start: %s", self.uri, libvirt_message(exc))

    def destroy_domain(self, *, name: str) -> None:
        """Power off and undefine a domain; a missing one is not an error."""
        with self._call(f"destroy domain '{name}'", Subject(domain=name)) as conn:
            domain = none_if_missing(libvirt.VIR_ERR_NO_DOMAIN, conn.lookupByName, name)
            if domain is None:
                return
            _power_off(domain)
            _undefine(domain)

    def domain_info(self, *, name: str) -> DomainInfo:
        with self._call(f"read domain '{name}'", Subject(domain=name)) as conn:
            return describe_domain(conn.lookupByName(name))

    def list_domains(self) -> list[DomainInfo]:
        """Every domain on the host that carries portal metadata tags, of any deployment.

        Which of them belong to this portal is the caller's question (``provisioning.naming.is_ours``).
        """
        with self._call("list domains") as conn:
            # A domain undefined while we list it is left out.
            no_domain = libvirt.VIR_ERR_NO_DOMAIN
            infos = [none_if_missing(no_domain, _tagged_domain_info, domain) for domain in conn.listAllDomains(0)]
            return sorted((info for info in infos if info is not None), key=lambda info: info.name)


__all__ = ["LibvirtDomains", "describe_domain"]

"""Power of defined domains: start, ACPI shutdown, power off, reboot, pause, resume, managed saves.

Each call is a no-op in the state it would reach, so a repeated request (two clicks, a task run
twice) does no harm. Whether that state is reached is read from the domain, before acting and again
when libvirt refuses: drivers word "already running" differently (QEMU's as an invalid operation,
others as an internal error), and the guest or another worker may get there between look and act.
"""

from __future__ import annotations

from collections.abc import Callable

import libvirt

from provisioning.drivers.base import DomainInfo, InvalidRequest, PortForward
from provisioning.drivers.domain_xml import with_port_forwards
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_domains import describe_domain
from provisioning.drivers.libvirt_errors import UNKNOWN_FLAG_CODES, Subject, has_code

Reached = Callable[[libvirt.virDomain], bool]


def is_off(domain: libvirt.virDomain) -> bool:
    return not domain.isActive()


def _is_on(domain: libvirt.virDomain) -> bool:
    return bool(domain.isActive())


def is_paused(domain: libvirt.virDomain) -> bool:
    state, _reason = domain.state()
    return bool(state == libvirt.VIR_DOMAIN_PAUSED)


def _is_paused_or_off(domain: libvirt.virDomain) -> bool:
    return is_off(domain) or is_paused(domain)


def _is_not_paused(domain: libvirt.virDomain) -> bool:
    return not is_paused(domain)


def has_no_saved_memory(domain: libvirt.virDomain) -> bool:
    return not domain.hasManagedSaveImage(0)


def unless_reached(domain: libvirt.virDomain, reached: Reached, act: Callable[[], object]) -> None:
    """``act()`` unless the domain is already where it would take it; a refusal is no failure once it is there."""
    if reached(domain):
        return
    try:
        act()
    except libvirt.libvirtError:
        if reached(domain):
            return
        raise


def first_known(*calls: Callable[[], object]) -> None:
    """Make the first of ``calls`` the driver accepts; each next one asks the same with plainer flags."""
    *preferred, plainest = calls
    for call in preferred:
        try:
            call()
            return
        except libvirt.libvirtError as exc:
            if not has_code(exc, *UNKNOWN_FLAG_CODES):
                raise
    plainest()


class LibvirtPower(LibvirtConnection):
    """Power actions and managed saves of one host's domains (a part of ``LibvirtDriver``)."""

    def start_domain(self, *, name: str) -> DomainInfo:
        """Start a stopped domain (libvirt restores its managed save, if it has one); no-op if it runs or is paused."""
        with self._call(f"start domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            unless_reached(domain, _is_on, domain.create)
            return describe_domain(domain)

    def shutdown_domain(self, *, name: str) -> None:
        """Press the guest's ACPI power button and return at once; no-op if it is off.

        A paused guest cannot hear the button, so it is resumed first. Drivers without the ACPI flag
        get libvirt's default shutdown (which may use a guest agent instead).
        """
        with self._call(f"shut down domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            if is_off(domain):
                return
            unless_reached(domain, _is_not_paused, domain.resume)

            def press_button() -> None:
                first_known(lambda: domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN), domain.shutdown)

            unless_reached(domain, is_off, press_button)

    def power_off_domain(self, *, name: str) -> None:
        """Cut the power (the domain stays defined, its disks untouched); no-op if it is off."""
        with self._call(f"power off domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            unless_reached(domain, is_off, domain.destroy)

    def reboot_domain(self, *, name: str) -> None:
        """Press the guest's ACPI power button for a reboot; a driver that cannot, resets the domain.

        Whether the guest obeys is its own business (as with a real button). A domain that is off
        cannot be rebooted: ``InvalidRequest``.
        """
        with self._call(f"reboot domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            if is_off(domain):
                raise InvalidRequest(f"cannot reboot domain '{name}': it is not running")
            first_known(
                lambda: domain.reboot(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN),
                lambda: domain.reboot(0),
                lambda: domain.reset(0),
            )

    def pause_domain(self, *, name: str) -> None:
        """Stop the guest's vCPUs (its memory stays in place); no-op if it is paused or off."""
        with self._call(f"pause domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            unless_reached(domain, _is_paused_or_off, domain.suspend)

    def resume_domain(self, *, name: str) -> None:
        """Let a paused guest run again; no-op if it runs or is off."""
        with self._call(f"resume domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            unless_reached(domain, _is_not_paused, domain.resume)

    def save_domain_memory(self, *, name: str) -> None:
        """Save the guest's memory on its host and stop it (a managed save): the next start resumes it, running.

        A paused guest comes back running as well. A domain that is off has no memory to save:
        no-op (``has_saved_memory`` tells whether an earlier save is kept).
        """
        with self._call(f"save the memory of domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)

            def save() -> None:
                first_known(lambda: domain.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING), lambda: domain.managedSave(0))

            unless_reached(domain, is_off, save)

    def discard_saved_memory(self, *, name: str) -> None:
        """Drop the domain's managed save, so its next start boots afresh; no-op if it has none."""
        with self._call(f"discard the saved memory of domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            # QEMU's driver fails removing a save that is not there, so look first.
            unless_reached(domain, has_no_saved_memory, lambda: domain.managedSaveRemove(0))

    def set_port_forwards(self, *, name: str, forwards: tuple[PortForward, ...]) -> None:
        """Publish a stopped domain's ports on other host ports, from its next start on.

        The persistent definition is rewritten, and so is the managed save's own copy of it (a restore
        starts QEMU from the XML in the save, not from the definition). Read and written with their
        secrets (the VNC password), which a plain read would leave out and so remove.
        """
        with self._call(f"move the published ports of domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            if domain.isActive():
                raise InvalidRequest(f"domain '{name}' runs: its published ports move only while it is off")
            inactive = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            conn.defineXML(with_port_forwards(inactive, forwards))
            if domain.hasManagedSaveImage(0):
                saved = domain.managedSaveGetXMLDesc(libvirt.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE)
                domain.managedSaveDefineXML(with_port_forwards(saved, forwards), 0)

    def has_saved_memory(self, *, name: str) -> bool:
        with self._call(f"look for the saved memory of domain '{name}'", Subject(domain=name)) as conn:
            return bool(conn.lookupByName(name).hasManagedSaveImage(0))


__all__ = ["LibvirtPower", "first_known", "has_no_saved_memory", "is_off", "is_paused", "unless_reached"]

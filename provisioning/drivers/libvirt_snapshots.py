"""Internal snapshots of domains: kept by libvirt inside their qcow2 disks, memory included when it runs.

What libvirt 9.0 with QEMU 7.2 allows, and what follows from it:

- A running or paused guest can only be snapshotted internally *with* its memory (QEMU's savevm):
  libvirt refuses an internal disk-only snapshot of it ("must include the memory state") and a
  disk-only one would have to be external. So a snapshot asked for without memory of such a guest
  is taken with it, marked (``SNAPSHOT_DISKS_ONLY``), and reverting it puts the disks back and
  leaves the domain off: the memory in it is never resumed, and the caller boots the guest afresh.
- A domain that is off has no memory: its snapshot holds the disks only, whatever was asked
  (its ``SnapshotInfo.with_memory`` says so). Reverting such a snapshot leaves the domain off.
- Only qcow2 disks keep internal snapshots; a writable disk of another format makes the domain
  unsnapshottable (``Unsupported``). Read-only disks (the config drive) are left out by libvirt.
- A managed save holds memory that belongs to the disks as they are; a revert changes them, so it
  drops the managed save first (libvirt would keep it and the next start would restore it).
"""

from __future__ import annotations

import libvirt

from provisioning.drivers.base import InvalidRequest, SnapshotInfo, Unsupported
from provisioning.drivers.domain_xml import (
    build_snapshot_xml,
    disks_without_snapshots,
    parse_snapshot_info,
    snapshot_holds_memory,
)
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import (
    UNKNOWN_FLAG_CODES,
    Subject,
    has_code,
    none_if_missing,
    unsupported_error,
)
from provisioning.drivers.libvirt_power import has_no_saved_memory, is_off, unless_reached
from provisioning.drivers.xml_values import validate_name

_NO_SNAPSHOT = libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT
# What QEMU's driver answers for a snapshot its disks or its state cannot take.
_CANNOT_SNAPSHOT_CODES = frozenset(
    {libvirt.VIR_ERR_CONFIG_UNSUPPORTED, libvirt.VIR_ERR_OPERATION_UNSUPPORTED, libvirt.VIR_ERR_NO_SUPPORT}
)


def _refuse_disks_without_snapshots(domain: libvirt.virDomain, action: str) -> None:
    refused = disks_without_snapshots(domain.XMLDesc(0))
    if refused:
        disks = ", ".join(f"{target} ({disk_format or 'unknown format'})" for target, disk_format in refused)
        raise Unsupported(f"cannot {action}: only qcow2 disks keep snapshots, and it has writable disks {disks}")


def _drop_managed_save(domain: libvirt.virDomain) -> None:
    try:
        unless_reached(domain, has_no_saved_memory, lambda: domain.managedSaveRemove(0))
    except libvirt.libvirtError as exc:
        if not has_code(exc, *UNKNOWN_FLAG_CODES):
            raise  # a driver without managed saves has none to drop


def _power_off(domain: libvirt.virDomain) -> None:
    unless_reached(domain, is_off, domain.destroy)


class LibvirtSnapshots(LibvirtConnection):
    """Snapshots of one host's domains (a part of ``LibvirtDriver``)."""

    def create_snapshot(self, *, domain: str, name: str, memory: bool) -> SnapshotInfo:
        """Snapshot the domain's writable disks (and, with ``memory``, its memory) as ``name``.

        A running guest is snapshotted as it is; the caller pauses the guests it wants taken at one
        moment. Without ``memory``, a running or paused guest's snapshot still holds its memory
        (libvirt takes no other internal snapshot of it), marked never to be resumed: its revert
        leaves the domain off. A domain that is off gives a snapshot of its disks only, so
        ``with_memory`` of the answer is false then even if ``memory`` was asked for.
        ``Unsupported`` names what the host cannot do (a writable disk that is not qcow2).
        """
        xml = build_snapshot_xml(name, disks_only=not memory)
        action = f"snapshot domain '{domain}' as '{name}'"
        with self._call(action, Subject(domain=domain, snapshot=name)) as conn:
            libvirt_domain = conn.lookupByName(domain)
            _refuse_disks_without_snapshots(libvirt_domain, action)
            if none_if_missing(_NO_SNAPSHOT, libvirt_domain.snapshotLookupByName, name, 0) is not None:
                raise InvalidRequest(f"cannot {action}: a snapshot of that name exists")
            try:
                snapshot = libvirt_domain.snapshotCreateXML(xml, 0)
            except libvirt.libvirtError as exc:
                if has_code(exc, *_CANNOT_SNAPSHOT_CODES):
                    reason = "the host cannot take an internal snapshot of it"
                    raise unsupported_error(exc, uri=self.uri, action=action, reason=reason) from exc
                raise
            return parse_snapshot_info(snapshot.getXMLDesc(0))

    def revert_snapshot(self, *, domain: str, name: str) -> None:
        """Put the domain's disks (and memory, if the snapshot has it) back as they were in ``name``.

        A snapshot with memory leaves the domain paused where it was, so the caller can resume
        several guests together; one without (``with_memory`` false) leaves it off. Any managed
        save of the domain is dropped: it belonged to the disks as they were before the revert.
        """
        validate_name("snapshot", name)
        subject = Subject(domain=domain, snapshot=name)
        with self._call(f"revert domain '{domain}' to snapshot '{name}'", subject) as conn:
            libvirt_domain = conn.lookupByName(domain)
            snapshot = libvirt_domain.snapshotLookupByName(name, 0)
            xml = snapshot.getXMLDesc(0)
            _drop_managed_save(libvirt_domain)
            if snapshot_holds_memory(xml):
                # Paused, so that no guest instruction runs before the caller resumes (or, for a
                # snapshot taken without memory, before the power is cut and only the disks remain).
                libvirt_domain.revertToSnapshot(snapshot, libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED)
                if not parse_snapshot_info(xml).with_memory:
                    _power_off(libvirt_domain)
            else:
                libvirt_domain.revertToSnapshot(snapshot, 0)  # libvirt stops a running domain first
                _power_off(libvirt_domain)

    def delete_snapshot(self, *, domain: str, name: str) -> None:
        """Delete one snapshot (its data merged away); a missing one is not an error."""
        validate_name("snapshot", name)
        subject = Subject(domain=domain, snapshot=name)
        with self._call(f"delete snapshot '{name}' of domain '{domain}'", subject) as conn:
            snapshot = none_if_missing(_NO_SNAPSHOT, conn.lookupByName(domain).snapshotLookupByName, name, 0)
            if snapshot is not None:
                none_if_missing(_NO_SNAPSHOT, snapshot.delete, 0)  # another worker may have been quicker

    def list_snapshots(self, *, domain: str) -> list[SnapshotInfo]:
        """The domain's snapshots, oldest first."""
        with self._call(f"list the snapshots of domain '{domain}'", Subject(domain=domain)) as conn:
            snapshots = conn.lookupByName(domain).listAllSnapshots(0)
            # A snapshot deleted while we list it is left out.
            xmls = (none_if_missing(_NO_SNAPSHOT, snapshot.getXMLDesc, 0) for snapshot in snapshots)
            infos = [parse_snapshot_info(xml) for xml in xmls if xml is not None]
            return sorted(infos, key=lambda info: (info.created_at, info.name))


__all__ = ["LibvirtSnapshots"]

"""libvirt XML for internal snapshots (``<domainsnapshot>``), built and read with ElementTree.

Pure functions, as in ``domain_xml``: no libvirt import, no connection; names are validated before
they are placed in the XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provisioning.drivers.base import InvalidRequest, SnapshotInfo
from provisioning.drivers.xml_values import validate_name

SNAPSHOT_DISKS_ONLY = "portal: disks only, its memory is not to be restored"
"""The description of a snapshot taken without memory of a running guest.

libvirt cannot take an internal snapshot of a running QEMU guest without its memory, so such a
snapshot holds the memory anyway; this mark (snapshots have no ``<metadata>``) tells a revert to
leave the guest off instead of resuming it, and the listing to report it without memory.
"""
# The only formats whose files keep internal snapshots (QEMU's savevm / qemu-img snapshot).
SNAPSHOT_FORMATS = frozenset({"qcow2"})
# libvirt's <state> of a snapshot taken while the guest ran (or was paused): its memory is in it.
_ACTIVE_SNAPSHOT_STATES = frozenset({"running", "blocked", "paused", "pmsuspended"})


def build_snapshot_xml(name: str, *, disks_only: bool) -> str:
    """A ``<domainsnapshot>`` named ``name``, left to libvirt's defaults (internal, read-only disks skipped)."""
    validate_name("snapshot", name)
    snapshot = ET.Element("domainsnapshot")
    _sub(snapshot, "name", name)
    if disks_only:
        _sub(snapshot, "description", SNAPSHOT_DISKS_ONLY)
    return ET.tostring(snapshot, encoding="unicode")


def snapshot_holds_memory(xml: str) -> bool:
    """Whether libvirt kept the guest's memory in a snapshot (whatever the portal asked for)."""
    root = _parse(xml)
    if root is None:
        return False
    memory = root.find("memory")
    if memory is not None and memory.get("snapshot"):
        return memory.get("snapshot") != "no"
    return (root.findtext("state") or "") in _ACTIVE_SNAPSHOT_STATES


def parse_snapshot_info(xml: str) -> SnapshotInfo:
    """Name, creation time and memory of a snapshot, from libvirt's ``<domainsnapshot>`` XML."""
    root = _parse(xml)
    if root is None:
        raise InvalidRequest("the host described a snapshot in XML that cannot be read")
    try:
        created_at = float(root.findtext("creationTime") or 0)
    except ValueError:
        created_at = 0.0
    disks_only = (root.findtext("description") or "") == SNAPSHOT_DISKS_ONLY
    return SnapshotInfo(
        name=root.findtext("name") or "",
        created_at=created_at,
        with_memory=snapshot_holds_memory(xml) and not disks_only,
    )


def disks_without_snapshots(xml: str) -> list[tuple[str, str]]:
    """``(target, format)`` of each writable disk of a domain whose format keeps no internal snapshots.

    The format is ``""`` when the domain XML does not name one.
    Read-only disks (the config drive) are left out of snapshots by libvirt, so they do not count.
    """
    root = _parse(xml)
    if root is None:
        return []
    refused = []
    for disk in root.iterfind("devices/disk"):
        if disk.get("device", "disk") != "disk" or disk.find("readonly") is not None or disk.get("snapshot") == "no":
            continue
        driver = disk.find("driver")
        disk_format = "" if driver is None else driver.get("type", "")
        if disk_format not in SNAPSHOT_FORMATS:
            target = disk.find("target")
            refused.append(("" if target is None else target.get("dev", ""), disk_format))
    return refused


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _parse(xml: str) -> ET.Element | None:
    try:
        return ET.fromstring(xml)  # noqa: S314 - the XML comes from libvirt, not from users
    except ET.ParseError:
        return None


__all__ = [
    "SNAPSHOT_DISKS_ONLY",
    "SNAPSHOT_FORMATS",
    "build_snapshot_xml",
    "disks_without_snapshots",
    "parse_snapshot_info",
    "snapshot_holds_memory",
]

"""The XML a migrating domain is defined with on its new host, rewritten from its XML on the old one.

Pure functions over ElementTree: no libvirt, no string formatting. What differs between two hosts is
rewritten (disk and console log files in the new host's pool, the VNC listen address, the host ports
its user-mode NIC publishes) and what one host chose for itself at run time is dropped (tap device
names, bridge and port ids of network interfaces, VNC ports, dynamic security labels), so the new
host chooses its own. Everything else (the guest's devices, their addresses, MACs, memory, CPUs,
metadata) stays exactly as it was: a live guest must find the same machine around it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provisioning.drivers.base import InvalidRequest
from provisioning.drivers.domain_xml import QEMU_NS, hostfwd_netdev_arg
from provisioning.drivers.migration_types import DestinationLayout
from provisioning.drivers.xml_values import validate_absolute_path

_HOSTFWD_PREFIX = "user,id=pub0,"  # the user-mode NIC domain_xml publishes ports through
# Interface attributes and children that name what the old host made for the guest at run time.
_RUNTIME_SOURCE_ATTRS = ("bridge", "portid")
_RUNTIME_GRAPHICS_ATTRS = ("port", "websocket")


def destination_xml(source_xml: str, layout: DestinationLayout) -> str:
    """``source_xml`` (the domain's XML on its old host) as the new host must define it."""
    try:
        root = ET.fromstring(source_xml)  # noqa: S314 - libvirt's own answer about a portal domain
    except ET.ParseError as exc:
        raise InvalidRequest("the domain's definition could not be read for its move") from exc
    devices = root.find("devices")
    if devices is None:
        raise InvalidRequest("the domain has no devices to move")
    _move_disks(devices, dict(layout.disk_paths))
    _move_console_log(devices, layout.console_log_path)
    _move_display(devices, layout.vnc_listen)
    _forget_interface_runtime(devices)
    _move_port_forwards(root, layout)
    _forget_dynamic_labels(root)
    return ET.tostring(root, encoding="unicode")


def _move_disks(devices: ET.Element, paths: dict[str, str]) -> None:
    for disk in devices.iterfind("disk"):
        target = disk.find("target")
        dev = target.get("dev", "") if target is not None else ""
        source = disk.find("source")
        if dev not in paths or source is None:
            if disk.get("device") == "disk":
                raise InvalidRequest(f"no place on the new host for disk {dev or '(unnamed)'}")
            continue
        validate_absolute_path("disk", paths[dev])
        source.attrib.clear()  # an index, a node name: the new host numbers its own
        source.set("file", paths[dev])
        # The new volume names its own backing file; the old host's path must not be carried over.
        for backing in disk.findall("backingStore"):
            disk.remove(backing)


def _move_console_log(devices: ET.Element, path: str | None) -> None:
    for serial in devices.iterfind("serial"):
        log = serial.find("log")
        if log is None:
            continue
        if path is None:
            serial.remove(log)
        else:
            validate_absolute_path("console log", path)
            log.set("file", path)
        source = serial.find("source")
        if source is not None:
            serial.remove(source)  # the old host's pty


def _move_display(devices: ET.Element, listen: str) -> None:
    for graphics in devices.iterfind("graphics"):
        if graphics.get("autoport") == "yes":
            for name in _RUNTIME_GRAPHICS_ATTRS:
                graphics.attrib.pop(name, None)
        if graphics.get("listen") is not None:
            graphics.set("listen", listen)
        for element in graphics.iterfind("listen"):
            if element.get("type") == "address":
                element.set("address", listen)


def _forget_interface_runtime(devices: ET.Element) -> None:
    for interface in devices.iterfind("interface"):
        source = interface.find("source")
        if source is not None:
            for name in _RUNTIME_SOURCE_ATTRS:
                source.attrib.pop(name, None)
        # Tap names are the kernel's: two daemons on one machine would both want "vnet0".
        target = interface.find("target")
        if target is not None:
            interface.remove(target)


def _move_port_forwards(root: ET.Element, layout: DestinationLayout) -> None:
    for arg in root.iter(f"{{{QEMU_NS}}}arg"):
        if arg.get("value", "").startswith(_HOSTFWD_PREFIX):
            if not layout.port_forwards:
                raise InvalidRequest("the domain publishes ports but no ports were given on the new host")
            arg.set("value", hostfwd_netdev_arg(layout.port_forwards))
            return
    if layout.port_forwards:
        raise InvalidRequest("the domain publishes no ports to move")


def _forget_dynamic_labels(root: ET.Element) -> None:
    for seclabel in root.findall("seclabel"):
        if seclabel.get("type") == "dynamic":
            root.remove(seclabel)  # the new host labels the guest itself


def copied_disk_targets(source_xml: str) -> tuple[str, ...]:
    """The devices of the domain's writable disks: the ones a migration copies."""
    root = ET.fromstring(source_xml)  # noqa: S314 - libvirt's own answer
    found = []
    for disk in root.iterfind("devices/disk"):
        target = disk.find("target")
        if disk.get("device") == "disk" and disk.find("readonly") is None and target is not None:
            found.append(target.get("dev", ""))
    return tuple(dev for dev in found if dev)


__all__ = ["copied_disk_targets", "destination_xml"]

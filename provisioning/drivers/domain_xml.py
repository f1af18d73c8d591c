"""libvirt XML for the portal's domains, pools and volumes, built and read with ElementTree.

Snapshots have theirs in ``snapshot_xml`` (its names are offered here too).

Pure functions: no libvirt import, no connection. Every value that ends up in XML is validated
first (``xml_values``) and then placed as element text or an attribute, so ElementTree does the
escaping and a hostile name can never add elements. Names of libvirt objects are chosen in
``provisioning.naming``, not here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provisioning.drivers.base import DomainSpec, DomainTags, InvalidRequest, PortForward
from provisioning.drivers.qos_xml import add_qos
from provisioning.drivers.snapshot_xml import (
    SNAPSHOT_DISKS_ONLY,
    SNAPSHOT_FORMATS,
    build_snapshot_xml,
    disks_without_snapshots,
    parse_snapshot_info,
    snapshot_holds_memory,
)
from provisioning.drivers.xml_values import (
    BRIDGE_PATTERN,
    DISK_FORMATS,
    DOMAIN_TYPES,
    NAME_PATTERN,
    validate_absolute_path,
    validate_capacity,
    validate_disk_format,
    validate_domain_spec,
    validate_name,
)

PORTAL_NS = "https://stackportal.dev/ns/libvirt/1"
"""Namespace of the ownership element in a domain's ``<metadata>``."""
PORTAL_NS_PREFIX = "portal"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
"""libvirt's namespace for ``<qemu:commandline>`` passthrough arguments."""
QEMU_NS_PREFIX = "qemu"

# Registered so serialised XML says portal:/qemu: instead of ns0:/ns1:, which keeps `virsh dumpxml`
# readable. libvirt itself matches on the namespace URI, not on the prefix.
ET.register_namespace(PORTAL_NS_PREFIX, PORTAL_NS)
ET.register_namespace(QEMU_NS_PREFIX, QEMU_NS)

# The hostfwd NIC gets a fixed PCI slot: libvirt cannot see devices passed on the qemu command line,
# and qemu, left to choose, places it on slot 2 before libvirt's VGA is created there ("slot 2 function
# 0 not available for VGA"). Slot 9 stays clear of what libvirt assigns to our handful of devices.
_HOSTFWD_NETDEV_ID = "pub0"
_HOSTFWD_PCI_ADDR = "0x9"


# --- domain XML ---------------------------------------------------------------------------------


# The config drive's device name in the guest: the sampler leaves it out of disk figures.
CONFIG_DRIVE_TARGET = "vdb"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _add_metadata(domain: ET.Element, tags: DomainTags) -> None:
    # The reconciler finds portal domains by this element, so it is written on every domain.
    metadata = _sub(domain, "metadata")
    _sub(
        metadata,
        f"{{{PORTAL_NS}}}instance",
        deployment=tags.deployment,
        project=str(tags.project_id),
        stack=str(tags.stack_id),
        instance=str(tags.instance_id),
    )


def _add_os_and_features(domain: ET.Element, spec: DomainSpec) -> None:
    os_element = _sub(domain, "os")
    _sub(os_element, "type", "hvm", arch=spec.arch, machine="pc")
    _sub(os_element, "boot", dev="hd")
    # Both are emulated by TCG as well, so the same XML serves kvm and qemu domains.
    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")


def _add_disk(devices: ET.Element, spec: DomainSpec) -> None:
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type=spec.disk_format)
    _sub(disk, "source", file=spec.disk_path)
    _sub(disk, "target", dev="vda", bus="virtio")


def _add_config_drive(devices: ET.Element, spec: DomainSpec) -> None:
    if spec.config_drive_path is None:
        return
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="raw")
    _sub(disk, "source", file=spec.config_drive_path)
    _sub(disk, "target", dev=CONFIG_DRIVE_TARGET, bus="virtio")
    _sub(disk, "readonly")


def _add_stack_nics(devices: ET.Element, spec: DomainSpec) -> None:
    for nic in spec.stack_nics:
        interface = _sub(devices, "interface", type="network")
        _sub(interface, "source", network=nic.network)
        _sub(interface, "mac", address=nic.mac_address)
        _sub(interface, "model", type="virtio")


def _console_log_path(path: str) -> str:
    # The host's log daemon creates this file as root: it must stay in the folder it names.
    validate_absolute_path("console log", path)
    if ".." in path.split("/"):
        raise InvalidRequest(f"invalid console log path {path!r}: it climbs out of its folder")
    return path


def _add_console(devices: ET.Element, spec: DomainSpec) -> None:
    serial = _sub(devices, "serial", type="pty")
    if spec.console_log_path is not None:
        # virtlogd appends everything the guest writes, whether or not a console is open, so a
        # console opened later can show what came before it. Only the serial port is logged: the
        # <console> below is the same port, seen again.
        _sub(serial, "log", file=_console_log_path(spec.console_log_path), append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")


def _add_display(devices: ET.Element, spec: DomainSpec) -> None:
    if spec.vnc:
        # Only on the host's management address, behind a password only the portal's console proxy
        # knows: the proxy does the VNC authentication itself, browsers never see the password.
        graphics = _sub(devices, "graphics", type="vnc", autoport="yes", listen=spec.vnc_listen)
        if spec.vnc_password is not None:
            graphics.set("passwd", spec.vnc_password)
        _sub(graphics, "listen", type="address", address=spec.vnc_listen)
    video = _sub(devices, "video")
    _sub(video, "model", type="vga")


def hostfwd_netdev_arg(forwards: tuple[PortForward, ...]) -> str:
    """The ``-netdev`` value publishing ``forwards`` through qemu's user-mode network."""
    rules = [f"hostfwd={fw.protocol}:{fw.host_address}:{fw.host_port}-:{fw.guest_port}" for fw in forwards]
    # restrict=on: the guest can open no connection through this NIC (10.0.2.2 would be the host's
    # loopback); the forwarded ports still reach it. Published ports stay the only way in or out.
    return ",".join([f"user,id={_HOSTFWD_NETDEV_ID},restrict=on", *rules])


def _add_port_forwards(domain: ET.Element, forwards: tuple[PortForward, ...]) -> None:
    # libvirt 9.0 has no passt backend and its <interface type='user'> cannot publish ports, so the
    # user-mode NIC is passed straight to qemu. This taints the domain ("custom-argv") and only works
    # on local qemu/kvm hosts. The cleaner production path is a bridged or routed libvirt network
    # with a real <interface>, publishing ports with host firewall rules (or passt on libvirt >= 9.2
    # via <portForward>), which libvirt manages and can hot-plug.
    if not forwards:
        return
    commandline = _sub(domain, f"{{{QEMU_NS}}}commandline")
    device = f"virtio-net-pci,netdev={_HOSTFWD_NETDEV_ID},bus=pci.0,addr={_HOSTFWD_PCI_ADDR}"
    for value in ("-netdev", hostfwd_netdev_arg(forwards), "-device", device):
        _sub(commandline, f"{{{QEMU_NS}}}arg", value=value)


def with_port_forwards(xml: str, forwards: tuple[PortForward, ...]) -> str:
    """A domain's XML with its published ports replaced by ``forwards`` (the same user-mode NIC, other host ports).

    ``InvalidRequest`` when the domain publishes no ports: adding a NIC is not what this is for.
    """
    root = ET.fromstring(xml)  # noqa: S314 - libvirt's own answer about a domain the portal defined
    prefix = f"user,id={_HOSTFWD_NETDEV_ID},"
    for arg in root.iter(f"{{{QEMU_NS}}}arg"):
        if arg.get("value", "").startswith(prefix):
            arg.set("value", hostfwd_netdev_arg(forwards))
            return ET.tostring(root, encoding="unicode")
    raise InvalidRequest("the domain publishes no ports to move")


def build_domain_xml(spec: DomainSpec) -> str:
    """Persistent domain XML for ``spec``. Raises ``InvalidRequest`` for unsafe or impossible values."""
    validate_domain_spec(spec)
    domain = ET.Element("domain", {"type": spec.domain_type})
    _sub(domain, "name", spec.name)
    _add_metadata(domain, spec.tags)
    _sub(domain, "memory", str(spec.memory_mib), unit="MiB")
    if spec.max_vcpus is not None and spec.max_vcpus > spec.vcpus:
        _sub(domain, "vcpu", str(spec.max_vcpus), current=str(spec.vcpus))  # room to add vCPUs live
    else:
        _sub(domain, "vcpu", str(spec.vcpus))
    _add_os_and_features(domain, spec)
    _sub(domain, "on_poweroff", "destroy")
    devices = _sub(domain, "devices")
    _add_disk(devices, spec)
    _add_config_drive(devices, spec)
    _add_stack_nics(devices, spec)
    _add_console(devices, spec)
    _add_display(devices, spec)
    _add_port_forwards(domain, spec.port_forwards)
    add_qos(domain, spec.qos)
    return ET.tostring(domain, encoding="unicode")


# --- network XML --------------------------------------------------------------------------------


def build_isolated_network_xml(name: str, bridge: str) -> str:
    """A network with no ``<forward>`` and no ``<ip>``: the host has no address on it and runs no DHCP.

    libvirt also turns IPv6 off on a bridge whose network has no IPv6 address, so the host gets no
    link-local address there either: only the guests attached to it can talk on it.
    """
    validate_name("network", name)
    if not isinstance(bridge, str) or not BRIDGE_PATTERN.fullmatch(bridge):
        raise InvalidRequest(f"invalid bridge name {bridge!r}")
    network = ET.Element("network")
    _sub(network, "name", name)
    _sub(network, "bridge", name=bridge, stp="on", delay="0")
    return ET.tostring(network, encoding="unicode")


# --- storage XML --------------------------------------------------------------------------------


def build_dir_pool_xml(name: str, path: str) -> str:
    validate_name("pool", name)
    validate_absolute_path("pool", path)
    pool = ET.Element("pool", {"type": "dir"})
    _sub(pool, "name", name)
    target = _sub(pool, "target")
    _sub(target, "path", path)
    return ET.tostring(pool, encoding="unicode")


def _volume_element(name: str, capacity_bytes: int, disk_format: str) -> ET.Element:
    validate_name("volume", name)
    validate_capacity(capacity_bytes)
    validate_disk_format(disk_format)
    volume = ET.Element("volume")
    _sub(volume, "name", name)
    _sub(volume, "capacity", str(capacity_bytes), unit="bytes")
    # Without an explicit allocation libvirt preallocates raw volumes to their full capacity.
    _sub(volume, "allocation", "0", unit="bytes")
    target = _sub(volume, "target")
    _sub(target, "format", type=disk_format)
    return volume


def build_volume_xml(name: str, capacity_bytes: int, disk_format: str) -> str:
    return ET.tostring(_volume_element(name, capacity_bytes, disk_format), encoding="unicode")


def build_overlay_xml(name: str, capacity_bytes: int, backing_path: str, backing_format: str) -> str:
    """A qcow2 volume whose writes land in itself while reads fall through to ``backing_path``."""
    validate_absolute_path("backing volume", backing_path)
    validate_disk_format(backing_format)
    volume = _volume_element(name, capacity_bytes, "qcow2")
    backing = _sub(volume, "backingStore")
    _sub(backing, "path", backing_path)
    _sub(backing, "format", type=backing_format)
    return ET.tostring(volume, encoding="unicode")


# --- reading libvirt's XML back -----------------------------------------------------------------


def _parse(xml: str) -> ET.Element | None:
    try:
        return ET.fromstring(xml)  # noqa: S314 - the XML comes from libvirt, not from users
    except ET.ParseError:
        return None


def _tags_from_element(element: ET.Element) -> DomainTags | None:
    try:
        return DomainTags(
            deployment=element.attrib["deployment"],
            project_id=int(element.attrib["project"]),
            stack_id=int(element.attrib["stack"]),
            instance_id=int(element.attrib["instance"]),
        )
    except (KeyError, ValueError):
        return None


def parse_domain_tags(xml: str) -> DomainTags | None:
    """Ownership tags of a domain, from its full XML or from the bare metadata element.

    ``virDomainGetMetadata`` returns the element without its namespace, so a root ``<instance>``
    is accepted as well. Domains without (valid) portal metadata yield ``None``.
    """
    root = _parse(xml)
    if root is None:
        return None
    if root.tag in (f"{{{PORTAL_NS}}}instance", "instance"):
        return _tags_from_element(root)
    element = root.find(f"metadata/{{{PORTAL_NS}}}instance")
    return None if element is None else _tags_from_element(element)


def parse_vnc_port(xml: str) -> int | None:
    """The VNC port of a running domain's live XML; ``None`` when there is none (yet)."""
    root = _parse(xml)
    graphics = None if root is None else root.find("devices/graphics[@type='vnc']")
    if graphics is None:
        return None
    try:
        port = int(graphics.attrib.get("port", "-1"))
    except ValueError:
        return None
    # libvirt writes port='-1' until autoport has picked one (and always, on the test driver).
    return port if port > 0 else None


def parse_guest_arches(capabilities_xml: str) -> tuple[str, ...]:
    """The guest architectures a host's capabilities XML offers, sorted, without repeats."""
    root = _parse(capabilities_xml)
    if root is None:
        return ()
    return tuple(sorted({arch.attrib["name"] for arch in root.iterfind("guest/arch") if arch.attrib.get("name")}))


def parse_pool_path(xml: str) -> str:
    root = _parse(xml)
    path = None if root is None else root.findtext("target/path")
    return path or ""


def parse_volume_format(xml: str) -> str:
    root = _parse(xml)
    element = None if root is None else root.find("target/format")
    return "" if element is None else element.attrib.get("type", "")


__all__ = [
    "DISK_FORMATS",
    "DOMAIN_TYPES",
    "NAME_PATTERN",
    "PORTAL_NS",
    "PORTAL_NS_PREFIX",
    "QEMU_NS",
    "SNAPSHOT_DISKS_ONLY",
    "SNAPSHOT_FORMATS",
    "build_dir_pool_xml",
    "build_domain_xml",
    "build_isolated_network_xml",
    "build_overlay_xml",
    "build_snapshot_xml",
    "build_volume_xml",
    "disks_without_snapshots",
    "hostfwd_netdev_arg",
    "parse_domain_tags",
    "parse_guest_arches",
    "parse_pool_path",
    "parse_snapshot_info",
    "parse_vnc_port",
    "parse_volume_format",
    "snapshot_holds_memory",
    "validate_absolute_path",
    "validate_capacity",
    "validate_disk_format",
    "validate_domain_spec",
    "validate_name",
]

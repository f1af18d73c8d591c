"""The XML the driver hands to libvirt, checked by parsing it back (no libvirt needed)."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from provisioning.drivers.base import DomainSpec, DomainTags, InvalidRequest, PortForward, StackNic
from provisioning.drivers.domain_xml import (
    PORTAL_NS,
    QEMU_NS,
    build_dir_pool_xml,
    build_domain_xml,
    build_isolated_network_xml,
    build_overlay_xml,
    build_volume_xml,
    parse_domain_tags,
    parse_pool_path,
    parse_vnc_port,
    parse_volume_format,
)

TAGS = DomainTags(deployment="lab-1", project_id=1, stack_id=2, instance_id=3)


def make_spec(**changes: object) -> DomainSpec:
    spec = DomainSpec(
        name="portal-i3",
        domain_type="qemu",
        vcpus=2,
        memory_mib=512,
        disk_path="/var/lib/libvirt/images/portal/lab-1-p1-s2-i3.qcow2",
        tags=TAGS,
    )
    return dataclasses.replace(spec, **changes)


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 - XML we just built


def qemu_args(root: ET.Element) -> list[str]:
    return [arg.attrib["value"] for arg in root.iterfind(f"{{{QEMU_NS}}}commandline/{{{QEMU_NS}}}arg")]


# --- domain XML ---------------------------------------------------------------------------------


def test_domain_basics() -> None:
    root = parse(build_domain_xml(make_spec()))

    assert root.tag == "domain"
    assert root.attrib == {"type": "qemu"}
    assert root.findtext("name") == "portal-i3"
    assert root.find("memory").attrib == {"unit": "MiB"}
    assert root.findtext("memory") == "512"
    assert root.findtext("vcpu") == "2"
    assert root.findtext("on_poweroff") == "destroy"


def test_os_boots_hvm_from_disk_with_acpi_and_apic() -> None:
    root = parse(build_domain_xml(make_spec(arch="i686")))

    os_type = root.find("os/type")
    assert os_type.text == "hvm"
    assert os_type.attrib == {"arch": "i686", "machine": "pc"}
    assert root.find("os/boot").attrib == {"dev": "hd"}
    assert [feature.tag for feature in root.find("features")] == ["acpi", "apic"]


def test_disk_is_a_virtio_file_disk_in_the_given_format() -> None:
    root = parse(build_domain_xml(make_spec(disk_format="raw", disk_path="/images/a.img")))

    disk = root.find("devices/disk")
    assert disk.attrib == {"type": "file", "device": "disk"}
    assert disk.find("driver").attrib == {"name": "qemu", "type": "raw"}
    assert disk.find("source").attrib == {"file": "/images/a.img"}
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}


def test_serial_console_and_video() -> None:
    devices = parse(build_domain_xml(make_spec())).find("devices")

    assert devices.find("serial").attrib == {"type": "pty"}
    assert devices.find("serial/target").attrib == {"port": "0"}
    assert devices.find("console").attrib == {"type": "pty"}
    assert devices.find("console/target").attrib == {"type": "serial", "port": "0"}
    assert devices.find("video/model").attrib == {"type": "vga"}


def test_vnc_listens_on_loopback_only() -> None:
    graphics = parse(build_domain_xml(make_spec())).find("devices/graphics")  # VNC is on unless turned off

    assert graphics.attrib == {"type": "vnc", "autoport": "yes", "listen": "127.0.0.1"}
    assert graphics.find("listen").attrib == {"type": "address", "address": "127.0.0.1"}


def test_no_graphics_without_vnc() -> None:
    root = parse(build_domain_xml(make_spec(vnc=False)))

    assert root.find("devices/graphics") is None
    assert root.find("devices/video") is not None


def test_metadata_carries_the_owner_in_the_portal_namespace() -> None:
    xml = build_domain_xml(make_spec())
    element = parse(xml).find(f"metadata/{{{PORTAL_NS}}}instance")

    assert element.attrib == {"deployment": "lab-1", "project": "1", "stack": "2", "instance": "3"}
    assert f'xmlns:portal="{PORTAL_NS}"' in xml
    assert "<portal:instance " in xml


def test_no_qemu_commandline_without_port_forwards() -> None:
    xml = build_domain_xml(make_spec())

    assert qemu_args(parse(xml)) == []
    assert QEMU_NS not in xml


def test_port_forwards_become_a_restricted_user_netdev_on_a_fixed_pci_slot() -> None:
    forwards = (
        PortForward(host_port=18080, guest_port=80),
        PortForward(host_port=15353, guest_port=53, host_address="10.0.0.5", protocol="udp"),
    )
    xml = build_domain_xml(make_spec(port_forwards=forwards))

    assert qemu_args(parse(xml)) == [
        "-netdev",
        # restrict=on: the guest opens no connection through it (10.0.2.2 is the host's loopback).
        "user,id=pub0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:80,hostfwd=udp:10.0.0.5:15353-:53",
        "-device",
        "virtio-net-pci,netdev=pub0,bus=pci.0,addr=0x9",
    ]
    assert "<qemu:commandline>" in xml


def test_config_drive_and_stack_nic() -> None:
    spec = make_spec(
        config_drive_path="/pool/portal-p1-s2-i3-cidata.iso",
        stack_nics=(StackNic(network="portal-p1-s2-net", mac_address="52:54:00:00:00:03"),),
    )
    devices = parse(build_domain_xml(spec)).find("devices")
    assert devices is not None
    drive = devices.find("disk/target[@dev='vdb']/..")
    assert drive is not None
    assert drive.find("source").attrib["file"] == "/pool/portal-p1-s2-i3-cidata.iso"
    assert drive.find("driver").attrib["type"] == "raw"
    assert drive.find("readonly") is not None
    (nic,) = devices.findall("interface")
    assert nic.attrib["type"] == "network"
    assert nic.find("source").attrib["network"] == "portal-p1-s2-net"
    assert nic.find("mac").attrib["address"] == "52:54:00:00:00:03"


@pytest.mark.parametrize(
    ("nic", "message"),
    [
        (StackNic(network="net", mac_address="52:54:00:00:00"), "invalid MAC address"),
        (StackNic(network="net", mac_address="52:54:00:00:00:0G"), "invalid MAC address"),
        (StackNic(network="bad name", mac_address="52:54:00:00:00:01"), "invalid network name"),
    ],
)
def test_bad_stack_nics_are_refused(nic: StackNic, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        build_domain_xml(make_spec(stack_nics=(nic,)))


def test_an_isolated_network_has_no_forward_and_no_address() -> None:
    network = parse(build_isolated_network_xml("portal-p1-s2-net", "vb0123456789ab"))
    assert network.findtext("name") == "portal-p1-s2-net"
    assert network.find("bridge").attrib["name"] == "vb0123456789ab"
    assert network.find("forward") is None
    assert network.find("ip") is None


@pytest.mark.parametrize("bridge", ["", "Bridge", "a" * 16, "vb-0"])
def test_bad_bridge_names_are_refused(bridge: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid bridge name"):
        build_isolated_network_xml("portal-p1-s2-net", bridge)


@pytest.mark.parametrize("domain_type", ["kvm", "qemu"])
def test_domain_types(domain_type: str) -> None:
    assert parse(build_domain_xml(make_spec(domain_type=domain_type))).attrib["type"] == domain_type


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", "-leading-dash", ".hidden", "a" * 64, "x'/><evil/>", 'x"y', "a b", "a/b", "ünï", "a\nb", "a;b"],
)
def test_unsafe_domain_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid domain name"):
        build_domain_xml(make_spec(name=name))


@pytest.mark.parametrize("name", ["a", "web-1", "portal_p1.s2-i3", "A" * 63])
def test_safe_domain_names_are_accepted(name: str) -> None:
    assert parse(build_domain_xml(make_spec(name=name))).findtext("name") == name


def test_hostile_disk_path_is_escaped_not_injected() -> None:
    hostile = "/images/x'/><evil/><source file='/etc/shadow"
    root = parse(build_domain_xml(make_spec(disk_path=hostile)))

    assert root.find(".//evil") is None
    assert len(root.findall("devices/disk/source")) == 1
    assert root.find("devices/disk/source").attrib["file"] == hostile


@pytest.mark.parametrize("port", [0, -1, 65536, 100000, True])
def test_out_of_range_ports_are_refused(port: int) -> None:
    with pytest.raises(InvalidRequest, match="invalid host port"):
        build_domain_xml(make_spec(port_forwards=(PortForward(host_port=port, guest_port=80),)))
    with pytest.raises(InvalidRequest, match="invalid guest port"):
        build_domain_xml(make_spec(port_forwards=(PortForward(host_port=8080, guest_port=port),)))


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1,hostfwd=tcp::22-:22", "::1", "", "256.1.1.1"])
def test_host_address_must_be_an_ipv4_literal(address: str) -> None:
    forward = PortForward(host_port=8080, guest_port=80, host_address=address)
    with pytest.raises(InvalidRequest, match="host address"):
        build_domain_xml(make_spec(port_forwards=(forward,)))


def test_unknown_protocol_is_refused() -> None:
    forward = PortForward(host_port=8080, guest_port=80, protocol="sctp")
    with pytest.raises(InvalidRequest, match="protocol"):
        build_domain_xml(make_spec(port_forwards=(forward,)))


def test_a_host_port_cannot_be_published_twice() -> None:
    forwards = (PortForward(host_port=8080, guest_port=80), PortForward(host_port=8080, guest_port=81))
    with pytest.raises(InvalidRequest, match="twice"):
        build_domain_xml(make_spec(port_forwards=forwards))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"domain_type": "xen"}, "unsupported domain type"),
        ({"domain_type": "kvm'/><x"}, "unsupported domain type"),
        ({"vcpus": 0}, "invalid vCPU count"),
        ({"vcpus": 10_000}, "invalid vCPU count"),
        ({"memory_mib": 1}, "invalid memory in MiB"),
        ({"disk_path": "relative/disk.qcow2"}, "invalid disk path"),
        ({"disk_path": "/images/a\nb.qcow2"}, "invalid disk path"),
        ({"disk_format": "qcow3"}, "unsupported disk format"),
        ({"arch": "x86_64'/>"}, "invalid architecture"),
        ({"tags": dataclasses.replace(TAGS, project_id=-1)}, "invalid project id"),
        ({"tags": dataclasses.replace(TAGS, instance_id=-3)}, "invalid instance id"),
        ({"tags": dataclasses.replace(TAGS, deployment="")}, "invalid deployment name"),
        ({"tags": dataclasses.replace(TAGS, deployment="lab'/><evil/>")}, "invalid deployment name"),
    ],
)
def test_impossible_specs_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        build_domain_xml(make_spec(**changes))


# --- reading XML back ---------------------------------------------------------------------------


def test_tags_round_trip_through_domain_xml() -> None:
    assert parse_domain_tags(build_domain_xml(make_spec())) == TAGS


def test_tags_from_the_bare_metadata_element() -> None:
    # virDomainGetMetadata returns the element without its namespace.
    bare = '<instance deployment="lab-2" project="4" stack="5" instance="6"/>'

    assert parse_domain_tags(bare) == DomainTags(deployment="lab-2", project_id=4, stack_id=5, instance_id=6)


@pytest.mark.parametrize(
    "xml",
    [
        "<domain type='kvm'><name>foreign</name></domain>",
        "<domain><metadata><other:instance xmlns:other='urn:x' project='1' stack='2' instance='3'/>"
        "</metadata></domain>",
        f"<domain><metadata><p:instance xmlns:p='{PORTAL_NS}' project='one' stack='2' instance='3'/>"
        "</metadata></domain>",
        f"<domain><metadata><p:instance xmlns:p='{PORTAL_NS}' project='1'/></metadata></domain>",
        # made before tags named their deployment: no portal may claim it
        f"<domain><metadata><p:instance xmlns:p='{PORTAL_NS}' project='1' stack='2' instance='3'/></metadata></domain>",
        "not xml at all <",
    ],
)
def test_domains_without_valid_portal_tags_yield_none(xml: str) -> None:
    assert parse_domain_tags(xml) is None


@pytest.mark.parametrize(
    ("graphics", "port"),
    [
        ("<graphics type='vnc' port='5901' autoport='yes'/>", 5901),
        ("<graphics type='vnc' port='-1' autoport='yes'/>", None),
        ("<graphics type='spice' port='5930'/>", None),
        ("", None),
    ],
)
def test_vnc_port_from_live_xml(graphics: str, port: int | None) -> None:
    assert parse_vnc_port(f"<domain><devices>{graphics}</devices></domain>") == port


# --- storage XML --------------------------------------------------------------------------------


def test_dir_pool_xml() -> None:
    root = parse(build_dir_pool_xml("portal", "/var/lib/libvirt/images/portal"))

    assert root.tag == "pool"
    assert root.attrib == {"type": "dir"}
    assert root.findtext("name") == "portal"
    assert root.findtext("target/path") == "/var/lib/libvirt/images/portal"
    assert parse_pool_path(build_dir_pool_xml("p", "/srv/p")) == "/srv/p"


@pytest.mark.parametrize(
    ("name", "path", "message"),
    [
        ("x'/><evil/>", "/srv/p", "invalid pool name"),
        ("p", "relative", "invalid pool path"),
        ("p", "", "invalid pool path"),
    ],
)
def test_bad_pool_requests_are_refused(name: str, path: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        build_dir_pool_xml(name, path)


def test_volume_xml_keeps_raw_volumes_sparse() -> None:
    root = parse(build_volume_xml("disk.img", 10 * 1024**3, "raw"))

    assert root.findtext("name") == "disk.img"
    assert root.find("capacity").attrib == {"unit": "bytes"}
    assert root.findtext("capacity") == str(10 * 1024**3)
    assert root.findtext("allocation") == "0"
    assert root.find("target/format").attrib == {"type": "raw"}
    assert root.find("backingStore") is None
    assert parse_volume_format(build_volume_xml("v", 1, "qcow2")) == "qcow2"


def test_overlay_xml_points_at_its_backing_store() -> None:
    root = parse(build_overlay_xml("child.qcow2", 2048, "/images/base.raw", "raw"))

    assert root.find("target/format").attrib == {"type": "qcow2"}
    assert root.findtext("capacity") == "2048"
    assert root.findtext("backingStore/path") == "/images/base.raw"
    assert root.find("backingStore/format").attrib == {"type": "raw"}


@pytest.mark.parametrize(
    ("name", "capacity", "disk_format", "message"),
    [
        ("v'/><evil/>", 1, "qcow2", "invalid volume name"),
        ("v", 0, "qcow2", "invalid capacity in bytes 0"),
        ("v", -5, "raw", "invalid capacity in bytes -5"),
        ("v", 1, "exe", "unsupported disk format 'exe'"),
    ],
)
def test_bad_volume_requests_are_refused(name: str, capacity: int, disk_format: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        build_volume_xml(name, capacity, disk_format)


def test_published_ports_are_rewritten_in_place_and_a_domain_without_them_is_refused():
    from provisioning.drivers.domain_xml import with_port_forwards

    xml = build_domain_xml(make_spec(port_forwards=(PortForward(host_port=20001, guest_port=80),)))
    moved = with_port_forwards(xml, (PortForward(host_port=20007, guest_port=80),))
    assert "hostfwd=tcp:127.0.0.1:20007-:80" in moved
    assert "20001" not in moved
    assert moved.count("-netdev") == xml.count("-netdev")
    with pytest.raises(InvalidRequest, match="publishes no ports"):
        with_port_forwards(build_domain_xml(make_spec(port_forwards=())), (PortForward(host_port=1, guest_port=2),))


# --- the serial console's log ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["relative/console.log", "/images/../etc/shadow", "/images/a\nb.log", ""])
def test_a_console_log_path_that_is_not_a_plain_absolute_path_is_refused(path):
    with pytest.raises(InvalidRequest):
        build_domain_xml(make_spec(console_log_path=path))


def test_the_serial_port_is_logged_to_the_file_named_appending():
    path = "/var/lib/libvirt/images/portal/lab-1-p1-s2-i3-console.log"
    devices = parse(build_domain_xml(make_spec(console_log_path=path))).find("devices")
    serial = devices.find("serial")
    log = serial.find("log")
    assert log.attrib == {"file": path, "append": "on"}
    assert serial.find("target").get("port") == "0"
    # The <console> is the same port seen again: logging it too would log everything twice.
    assert devices.find("console/log") is None


def test_without_a_console_log_path_nothing_is_logged():
    assert parse(build_domain_xml(make_spec())).find("devices/serial/log") is None

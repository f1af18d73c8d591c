"""The XML a moving domain gets on its new host: what differs between hosts is rewritten, what the old host
chose at run time is dropped, and everything the guest sees stays as it was."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from provisioning.drivers import DomainSpec, DomainTags, InvalidRequest, PortForward, StackNic
from provisioning.drivers.domain_xml import QEMU_NS, build_domain_xml
from provisioning.drivers.migration_types import DestinationLayout
from provisioning.drivers.migration_xml import copied_disk_targets, destination_xml

SPEC = DomainSpec(
    name="portal-i7-web",
    domain_type="qemu",
    vcpus=1,
    memory_mib=128,
    disk_path="/old/pool/portal-p1-s2-i7.qcow2",
    config_drive_path="/old/pool/portal-p1-s2-i7-cidata.iso",
    console_log_path="/old/pool/portal-p1-s2-i7-console.log",
    stack_nics=(StackNic(network="portal-p1-s2-net", mac_address="52:54:00:00:00:07"),),
    port_forwards=(PortForward(host_port=20000, guest_port=80, host_address="127.0.0.4"),),
    vnc_listen="127.0.0.4",
    vnc_password="secret12",
    tags=DomainTags(deployment="portal", project_id=1, stack_id=2, instance_id=7),
)
LAYOUT = DestinationLayout(
    disk_paths=(("vda", "/new/pool/portal-p1-s2-i7.qcow2"), ("vdb", "/new/pool/portal-p1-s2-i7-cidata.iso")),
    vnc_listen="127.0.0.2",
    console_log_path="/new/pool/portal-p1-s2-i7-console.log",
    port_forwards=(PortForward(host_port=20005, guest_port=80, host_address="127.0.0.2"),),
)


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 - XML the test built


def live_xml() -> str:
    """The domain's XML as a running domain's looks: with what its host chose at run time."""
    root = parse(build_domain_xml(SPEC))
    vda = root.find("devices/disk/target[@dev='vda']/..")
    backing = ET.SubElement(vda, "backingStore", type="file")
    ET.SubElement(backing, "source", file="/old/pool/portal-base-abc.qcow2")
    vda.find("source").set("index", "2")
    interface = root.find("devices/interface")
    interface.find("source").attrib.update(bridge="vb0123456789ab", portid="8c1c")
    ET.SubElement(interface, "target", dev="vnet3")
    root.find("devices/graphics").set("port", "5903")
    label = ET.SubElement(root, "seclabel", type="dynamic", model="dac")
    ET.SubElement(label, "label").text = "+64055:+64055"
    return ET.tostring(root, encoding="unicode")


def test_what_differs_between_hosts_is_rewritten():
    root = parse(destination_xml(live_xml(), LAYOUT))
    disks = {d.find("target").get("dev"): d for d in root.iterfind("devices/disk")}
    assert disks["vda"].find("source").attrib == {"file": "/new/pool/portal-p1-s2-i7.qcow2"}
    assert disks["vda"].find("backingStore") is None  # the new overlay names its own base
    assert disks["vdb"].find("source").get("file") == "/new/pool/portal-p1-s2-i7-cidata.iso"
    assert disks["vdb"].find("readonly") is not None
    assert root.find("devices/serial/log").get("file") == "/new/pool/portal-p1-s2-i7-console.log"
    graphics = root.find("devices/graphics")
    assert (graphics.get("listen"), graphics.find("listen").get("address")) == ("127.0.0.2", "127.0.0.2")
    assert graphics.get("port") is None
    assert graphics.get("passwd") == "secret12"
    args = [a.get("value") for a in root.iter(f"{{{QEMU_NS}}}arg")]
    assert "user,id=pub0,restrict=on,hostfwd=tcp:127.0.0.2:20005-:80" in args


def test_what_the_old_host_chose_is_dropped_and_the_guest_keeps_its_machine():
    root = parse(destination_xml(live_xml(), LAYOUT))
    interface = root.find("devices/interface")
    assert interface.find("source").attrib == {"network": "portal-p1-s2-net"}  # the target's network of that name
    assert interface.find("target") is None
    assert interface.find("mac").get("address") == "52:54:00:00:00:07"
    assert root.find("seclabel") is None
    assert root.findtext("name") == "portal-i7-web"
    assert root.findtext("memory") == "128"
    assert root.find("metadata")[0].get("instance") == "7"


def test_refuses_a_layout_that_leaves_a_disk_or_the_ports_behind():
    with pytest.raises(InvalidRequest, match="no place on the new host for disk vdb"):
        destination_xml(live_xml(), DestinationLayout(disk_paths=LAYOUT.disk_paths[:1], vnc_listen="127.0.0.2"))
    no_ports = DestinationLayout(disk_paths=LAYOUT.disk_paths, vnc_listen="127.0.0.2")
    with pytest.raises(InvalidRequest, match="no ports were given"):
        destination_xml(live_xml(), no_ports)
    with pytest.raises(InvalidRequest, match="invalid disk path"):
        destination_xml(live_xml(), DestinationLayout(disk_paths=(("vda", "relative"),), vnc_listen="127.0.0.2"))
    with pytest.raises(InvalidRequest):
        destination_xml("<domain", LAYOUT)


def test_only_the_writable_disk_is_copied():
    assert copied_disk_targets(live_xml()) == ("vda",)

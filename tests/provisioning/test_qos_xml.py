"""Quality of service in domain XML: libvirt's <iotune>, <bandwidth> and <cputune>, and nonsense refused."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from provisioning.drivers import DomainSpec, DomainTags, InvalidRequest
from provisioning.drivers.base import StackNic
from provisioning.drivers.domain_xml import build_domain_xml
from provisioning.drivers.qos_types import DomainQos
from provisioning.drivers.qos_xml import MAX_BYTES_SEC, add_qos

TAGS = DomainTags(deployment="lab", project_id=1, stack_id=2, instance_id=3)


def domain(qos: DomainQos, **changes) -> ET.Element:
    spec = DomainSpec(
        name="portal-i3",
        domain_type="qemu",
        vcpus=2,
        memory_mib=512,
        disk_path="/var/lib/libvirt/images/portal/lab-1-p1-s2-i3.qcow2",
        config_drive_path="/var/lib/libvirt/images/portal/lab-1-p1-s2-i3-config.img",
        stack_nics=(StackNic(network="lab-1-net", mac_address="52:54:00:00:00:03"),),
        tags=TAGS,
        qos=qos,
    )
    return ET.fromstring(build_domain_xml(dataclasses.replace(spec, **changes)))  # noqa: S314 - ours


def disk(root: ET.Element, dev: str) -> ET.Element:
    (found,) = [item for item in root.iterfind("devices/disk") if item.find(f"target[@dev='{dev}']") is not None]
    return found


def test_no_limits_add_no_elements():
    root = domain(DomainQos())
    assert root.find(".//iotune") is None
    assert root.find(".//bandwidth") is None
    assert root.find("cputune") is None


def test_every_limit_lands_in_libvirts_own_element():
    root = domain(
        DomainQos(
            disk_read_bytes_sec=4_000_000,
            disk_write_bytes_sec=2_097_152,
            disk_read_iops_sec=500,
            disk_write_iops_sec=200,
            net_inbound_kib_sec=1024,
            net_outbound_kib_sec=512,
            cpu_shares=512,
            pinned_cpus=(6, 7),
        )
    )
    iotune = disk(root, "vda").find("iotune")
    assert {child.tag: child.text for child in iotune} == {
        "read_bytes_sec": "4000000",
        "write_bytes_sec": "2097152",
        "read_iops_sec": "500",
        "write_iops_sec": "200",
    }
    assert disk(root, "vdb").find("iotune") is None  # the read-only config drive is not limited
    bandwidth = root.find("devices/interface[@type='network']/bandwidth")
    assert bandwidth.find("inbound").attrib == {"average": "1024"}
    assert bandwidth.find("outbound").attrib == {"average": "512"}
    assert root.findtext("cputune/shares") == "512"
    assert [pin.attrib for pin in root.iterfind("cputune/vcpupin")] == [
        {"vcpu": "0", "cpuset": "6"},
        {"vcpu": "1", "cpuset": "7"},
    ]


def test_totals_and_one_direction_only():
    root = domain(DomainQos(disk_total_bytes_sec=10_000_000, disk_total_iops_sec=300, net_outbound_kib_sec=64))
    iotune = disk(root, "vda").find("iotune")
    assert {child.tag: child.text for child in iotune} == {"total_bytes_sec": "10000000", "total_iops_sec": "300"}
    bandwidth = root.find("devices/interface/bandwidth")
    assert bandwidth.find("inbound") is None
    assert bandwidth.find("outbound").get("average") == "64"
    assert root.find("cputune") is None


def test_shares_without_pinning_and_pinning_without_shares():
    assert domain(DomainQos(cpu_shares=2048)).find("cputune/vcpupin") is None
    root = domain(DomainQos(pinned_cpus=(3, 1)))
    assert root.find("cputune/shares") is None
    assert [pin.get("cpuset") for pin in root.iterfind("cputune/vcpupin")] == ["3", "1"]


@pytest.mark.parametrize(
    "qos",
    [
        DomainQos(disk_write_bytes_sec=0),
        DomainQos(disk_read_bytes_sec=-1),
        DomainQos(disk_read_bytes_sec=MAX_BYTES_SEC + 1),
        DomainQos(disk_write_iops_sec=10**9),
        DomainQos(disk_read_iops_sec=True),
        DomainQos(disk_write_bytes_sec="2097152"),
        DomainQos(disk_total_bytes_sec=100, disk_read_bytes_sec=50),  # libvirt takes one or the other
        DomainQos(disk_total_iops_sec=100, disk_write_iops_sec=50),
        DomainQos(net_inbound_kib_sec=0),
        DomainQos(net_outbound_kib_sec=10**12),
        DomainQos(cpu_shares=1),
        DomainQos(cpu_shares=300_000),
        DomainQos(pinned_cpus=(2, 2)),  # two vCPUs on one dedicated CPU
        DomainQos(pinned_cpus=(-1, 2)),
        DomainQos(pinned_cpus=(5000, 2)),
        DomainQos(pinned_cpus=(4,)),  # two vCPUs, one CPU
    ],
)
def test_nonsense_is_refused_before_libvirt_sees_it(qos):
    with pytest.raises(InvalidRequest):
        domain(qos)


def test_pins_follow_the_current_vcpus_when_the_domain_has_room_for_more():
    root = domain(DomainQos(pinned_cpus=(4, 5)), max_vcpus=4)
    assert root.find("vcpu").attrib == {"current": "2"}
    assert len(root.findall("cputune/vcpupin")) == 2


def test_a_disk_limit_needs_the_guests_disk():
    bare = ET.Element("domain")
    ET.SubElement(bare, "devices")
    with pytest.raises(InvalidRequest):
        add_qos(bare, DomainQos(disk_write_bytes_sec=1024))
    add_qos(bare, DomainQos())  # nothing to add, nothing needed


def test_a_host_that_cannot_shape_traffic_says_so_in_our_words():
    """libvirt shapes <bandwidth> with tc; a kernel without sfq refuses, and the reason must be plain."""
    import libvirt

    from provisioning.drivers.base import Unsupported
    from provisioning.drivers.libvirt_errors import NO_SUBJECT, translate_error

    raised = libvirt.libvirtError(
        "internal error: Child process (tc qdisc add dev vnet3 parent 1:1 handle 2: sfq perturb 10) "
        "unexpected exit status 2: Error: Specified qdisc kind is unknown."
    )
    error = translate_error(raised, uri="qemu:///system", action="start domain", subject=NO_SUBJECT)
    assert isinstance(error, Unsupported)
    assert "cannot limit network bandwidth" in error.message
    assert "tc qdisc" not in error.message
    assert "tc qdisc" in error.detail

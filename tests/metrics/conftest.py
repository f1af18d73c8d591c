"""Fixtures of the metrics tests: instances on libvirt's test driver (two hosts, their domains defined),
and sampler answers made by hand for the arithmetic of rates."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from provisioning.drivers import open_driver
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.models import Host, Instance, Stack, Status
from tests.factories import HostFactory
from tests.provisioning.libvirt_doubles import NODE_XML, make_spec


def make_stack(project, name: str = "shop") -> Stack:
    return Stack.objects.create(
        project=project, name=name, status=Status.RUNNING, expires_at=timezone.now() + timedelta(hours=1)
    )


def make_instance(stack: Stack, host: Host | None, domain: str, *, status: str = Status.RUNNING, **fields) -> Instance:
    values = {"role": "web", "vcpus": 2, "memory_mib": 256, **fields}
    return Instance.objects.create(stack=stack, name=domain, host=host, status=status, domain_name=domain, **values)


def node_xml(domains: list[str]) -> str:
    """A test:// node holding running domains ``domains``: each connection to it reads them again."""
    node = ET.Element("node")
    cpu = ET.SubElement(node, "cpu")
    for tag, text in (("mhz", "2400"), ("model", "i686"), ("active", "8"), ("nodes", "1"), ("sockets", "1")):
        ET.SubElement(cpu, tag).text = text
    ET.SubElement(cpu, "cores").text = "4"
    ET.SubElement(cpu, "threads").text = "2"
    ET.SubElement(node, "memory").text = str(8 * 1024 * 1024)
    for name in domains:
        domain = ET.SubElement(node, "domain", type="test")
        ET.SubElement(domain, "name").text = name
        ET.SubElement(domain, "memory").text = str(256 * 1024)
        ET.SubElement(domain, "vcpu").text = "2"
        os_element = ET.SubElement(domain, "os")
        ET.SubElement(os_element, "type").text = "hvm"
    return ET.tostring(node, encoding="unicode")


@pytest.fixture
def node_host(db, tmp_path: Path):
    """A second test:// host whose node file defines ``node-a`` and ``node-b``."""
    path = tmp_path / "node.xml"
    path.write_text(node_xml(["node-a", "node-b"]))
    return HostFactory(name="node-host", uri=f"test://{path}")


@pytest.fixture
def default_host(test_host) -> Iterator[Host]:
    """``test:///default`` with the domains ``default-a`` and ``default-b`` defined and running."""
    with open_driver(test_host.uri) as driver:
        for name in ("default-a", "default-b"):
            driver.define_and_start(make_spec("/default-pool/disk.qcow2", name=name))
        yield test_host


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[LibvirtDriver]:
    """A driver on a fresh test:// node (six CPUs, 2 GiB; see ``libvirt_doubles.NODE_XML``)."""
    node = tmp_path / "driver-node.xml"
    node.write_text(NODE_XML)
    with LibvirtDriver(f"test://{node}") as opened:
        yield opened

"""Test doubles and helpers for the libvirt driver tests: a test:// node, an opener that keeps its
connections, and tiny fakes wrapped around real test:// objects.

The driver's public ``connect`` seam takes an ``Opener``: tests read what libvirt stored through the
connections it kept, and fakes change one answer of a real connection (its driver type, a domain's
start) while everything else stays the real test driver.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt

from provisioning.drivers.base import DomainSpec, DomainTags, PortForward, VolumeInfo
from provisioning.drivers.libvirt_driver import LibvirtDriver

NODE_POOL = "images"
NODE_POOL_PATH = "/portal-images"
NODE_XML = f"""\
<node>
  <pool type="dir">
    <name>{NODE_POOL}</name>
    <target><path>{NODE_POOL_PATH}</path></target>
  </pool>
  <cpu>
    <mhz>2400</mhz>
    <model>i686</model>
    <active>6</active>
    <nodes>1</nodes>
    <sockets>1</sockets>
    <cores>3</cores>
    <threads>2</threads>
  </cpu>
  <memory>2097152</memory>
</node>
"""
TAGS = DomainTags(deployment="drvtest", project_id=7, stack_id=8, instance_id=9)


class Opener:
    """A ``connect`` for the driver that opens with ``libvirt.open`` and keeps every connection it made.

    ``wrap`` puts a fake around each new connection; ``conn`` is the latest, for looking behind the driver.
    """

    def __init__(self, wrap: Callable[[Any], Any] = lambda conn: conn) -> None:
        self.opened: list[Any] = []
        self._wrap = wrap

    def __call__(self, uri: str) -> Any:
        conn = libvirt.open(uri)
        self.opened.append(conn)
        return self._wrap(conn)

    @property
    def conn(self) -> Any:
        return self.opened[-1]


class Wrapper:
    """Passes everything through to the wrapped libvirt object, except what a subclass overrides."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class PosingAsQemu(Wrapper):
    """A test:// connection that calls itself QEMU, so the driver takes it for a host that stores volume data."""

    def getType(self) -> str:
        return "QEMU"


class DomainThatFailsToStart(Wrapper):
    def create(self) -> int:
        # It does start, then a second create() fails for real ("already running"), the way a qemu that
        # dies right after launch leaves a defined domain behind.
        self.inner.create()
        return int(self.inner.create())


class DomainsFailToStart(Wrapper):
    """A test:// connection whose domains fail to start once defined."""

    def defineXML(self, xml: str) -> DomainThatFailsToStart:
        return DomainThatFailsToStart(self.inner.defineXML(xml))


def make_spec(disk_path: str, **changes: object) -> DomainSpec:
    spec = DomainSpec(
        name="portal-i9",
        domain_type="qemu",
        vcpus=1,
        memory_mib=128,
        disk_path=disk_path,
        tags=TAGS,
        port_forwards=(PortForward(host_port=18022, guest_port=22),),
    )
    return dataclasses.replace(spec, **changes)


def upload(
    driver: LibvirtDriver,
    image: Path,
    name: str = "base.qcow2",
    disk_format: str = "qcow2",
    progress: Callable[[int, int], None] | None = None,
) -> VolumeInfo:
    return driver.upload_volume(
        pool=NODE_POOL,
        name=name,
        source_path=str(image),
        disk_format=disk_format,
        capacity_bytes=64 * 1024 * 1024,
        progress=progress,
    )


def volume_xml(conn: Any, pool: str, name: str) -> ET.Element:
    """Read what libvirt stored, beyond what VolumeInfo exposes."""
    xml = conn.storagePoolLookupByName(pool).storageVolLookupByName(name).XMLDesc(0)
    return ET.fromstring(xml)  # noqa: S314 - XML from libvirt

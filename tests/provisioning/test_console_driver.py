"""The driver's side of consoles: VNC only on the management address with a password, serial streams."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import libvirt
import pytest
from django.utils import timezone

from provisioning.consoles import backends
from provisioning.consoles.tickets import ConsoleGrant
from provisioning.drivers import InvalidRequest, open_driver
from provisioning.drivers.base import DomainSpec, DomainTags, DriverError, Unsupported
from provisioning.drivers.domain_xml import build_domain_xml
from provisioning.drivers.libvirt_console import LibvirtConsoleStream
from provisioning.services.launch import stack_launch

SPEC = DomainSpec(
    name="portal-i3",
    domain_type="qemu",
    vcpus=1,
    memory_mib=256,
    disk_path="/var/lib/libvirt/images/portal/i3.qcow2",
    tags=DomainTags(deployment="portal", project_id=1, stack_id=2, instance_id=3),
)


def graphics_of(spec: DomainSpec) -> ET.Element:
    graphics = ET.fromstring(build_domain_xml(spec)).find("devices/graphics")  # noqa: S314 - XML we just built
    assert graphics is not None
    return graphics


def test_vnc_listens_on_the_management_address_with_the_password():
    graphics = graphics_of(dataclasses.replace(SPEC, vnc_listen="192.0.2.10", vnc_password="Ab3dEf7h"))
    assert graphics.attrib == {"type": "vnc", "autoport": "yes", "listen": "192.0.2.10", "passwd": "Ab3dEf7h"}
    assert graphics.find("listen").attrib == {"type": "address", "address": "192.0.2.10"}


@pytest.mark.parametrize("password", ["", "ninechars", "two wrds", "pässwört", "pw\n"])
def test_unsafe_vnc_passwords_are_refused_without_being_repeated(password):
    with pytest.raises(InvalidRequest) as refused:
        build_domain_xml(dataclasses.replace(SPEC, vnc_password=password))
    assert not password or password not in str(refused.value)


@pytest.mark.parametrize("address", ["0.0.0.0.0", "localhost", "", "127.0.0.1/8"])
def test_the_vnc_listen_address_must_be_an_ip_literal(address):
    with pytest.raises(InvalidRequest):
        build_domain_xml(dataclasses.replace(SPEC, vnc_listen=address))


@pytest.mark.django_db
def test_a_built_domain_has_the_instances_password_and_the_hosts_console_address(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stack = stack_launch(
            user=member, project=project, name="vnc", appliance_version=ready_version, lease_seconds=600
        )
    instance = stack.instances.get()
    assert len(instance.vnc_password) == 8
    conn = libvirt.open("test:///default")
    try:
        domain = conn.lookupByName(instance.domain_name)
        secure = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))  # noqa: S314 - libvirt's own XML
        public = ET.fromstring(domain.XMLDesc(0))  # noqa: S314 - libvirt's own XML
    finally:
        conn.close()
    assert secure.find("devices/graphics").get("passwd") == instance.vnc_password
    assert secure.find("devices/graphics").get("listen") == test_host.console_address
    assert public.find("devices/graphics").get("passwd") is None  # only callers asking for secrets see it


def test_a_host_whose_driver_has_no_consoles_says_so():
    with open_driver("test:///default") as driver, pytest.raises(Unsupported):
        driver.open_console(name="test")


def test_the_proxy_reports_a_console_it_cannot_open():
    grant = ConsoleGrant(
        ticket_id=1,
        kind="serial",
        user_id=1,
        instance_id=1,
        stack_id=1,
        host_uri="test:///default",
        console_address="127.0.0.1",
        domain_name="test",
        vnc_port=None,
        vnc_password="",
        stack_expires_at=timezone.now(),
    )
    with pytest.raises(backends.ConsoleUnreachable):
        backends.open_serial(grant)


class FakeStream:
    """A libvirt stream as the console sees it: recv, send (maybe partial), abort."""

    def __init__(self, incoming: list[bytes | Exception], send_sizes: list[int] | None = None) -> None:
        self.incoming = incoming
        self.sent: list[bytes] = []
        self.send_sizes = send_sizes or []
        self.aborted = False

    def recv(self, _max: int) -> bytes:
        item = self.incoming.pop(0) if self.incoming else b""
        if isinstance(item, Exception):
            raise item
        return item

    def send(self, data: bytes) -> int:
        size = self.send_sizes.pop(0) if self.send_sizes else len(data)
        self.sent.append(data[:size])
        return size

    def abort(self) -> None:
        self.aborted = True


def _libvirt_error(code: int) -> libvirt.libvirtError:
    error = libvirt.libvirtError("stream went away")
    error.err = (code, 0, "stream went away", 0, "", None, None, 0, 0)
    return error


def test_a_console_stream_reads_writes_whole_and_closes_once():
    stream = FakeStream([b"login: "], send_sizes=[2, 3])
    console = LibvirtConsoleStream(stream=stream, uri="qemu:///system", domain="d1")
    assert console.read(4096) == b"login: "
    console.write(b"root\r")
    assert b"".join(stream.sent) == b"root\r"
    console.close()
    console.close()
    assert stream.aborted
    assert console.read(4096) == b""  # after close, reads end instead of blocking


def test_a_failing_stream_is_a_driver_error_unless_we_closed_it():
    stream = FakeStream([_libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR)])
    with pytest.raises(DriverError, match="serial console of 'd1'"):
        LibvirtConsoleStream(stream=stream, uri="qemu:///system", domain="d1").read(10)

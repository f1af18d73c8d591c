"""Checks on every value the portal puts into libvirt XML, before any XML is built.

A value that fails raises ``InvalidRequest`` naming what was wrong; ``domain_xml`` only ever places
values that passed here, as element text or attributes (ElementTree escapes them).
"""

from __future__ import annotations

import ipaddress
import re

from provisioning.drivers.base import DomainSpec, DomainTags, InvalidRequest, PortForward, StackNic

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DOMAIN_TYPES = frozenset({"kvm", "qemu"})
DISK_FORMATS = frozenset({"qcow2", "raw", "vmdk", "vdi", "vpc"})
PORT_PROTOCOLS = frozenset({"tcp", "udp"})
MAX_VCPUS = 256

_MAC_PATTERN = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
BRIDGE_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,14}$")
_ARCH_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")


def validate_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a safe libvirt object name, else raise ``InvalidRequest``."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidRequest(f"invalid {kind} name {value!r}: expected {NAME_PATTERN.pattern}")
    return value


def validate_disk_format(value: str) -> str:
    if value not in DISK_FORMATS:
        raise InvalidRequest(f"unsupported disk format {value!r}: expected one of {sorted(DISK_FORMATS)}")
    return value


def validate_absolute_path(kind: str, value: str) -> str:
    """Paths live on the hypervisor host, so only their shape can be checked here."""
    if not isinstance(value, str) or not value.startswith("/") or any(ord(ch) < 32 for ch in value):
        raise InvalidRequest(f"invalid {kind} path {value!r}: expected an absolute path")
    return value


def _validate_int(kind: str, value: int, minimum: int, maximum: int | None = None) -> int:
    # bool is an int subclass; True as a port or a vCPU count is a caller bug, not a value.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"invalid {kind} {value!r}: expected an integer")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f"..{maximum}"
        raise InvalidRequest(f"invalid {kind} {value}: expected {minimum}{upper}")
    return value


def validate_capacity(value: int) -> int:
    return _validate_int("capacity in bytes", value, 1)


def _validate_tags(tags: DomainTags) -> DomainTags:
    validate_name("deployment", tags.deployment)
    _validate_int("project id", tags.project_id, 0)
    _validate_int("stack id", tags.stack_id, 0)
    _validate_int("instance id", tags.instance_id, 0)
    return tags


def _validate_port_forward(forward: PortForward) -> PortForward:
    _validate_int("host port", forward.host_port, 1, 65535)
    _validate_int("guest port", forward.guest_port, 1, 65535)
    if forward.protocol not in PORT_PROTOCOLS:
        raise InvalidRequest(f"invalid protocol {forward.protocol!r}: expected tcp or udp")
    try:
        address = ipaddress.ip_address(forward.host_address)
    except ValueError:
        raise InvalidRequest(f"invalid host address {forward.host_address!r}: expected an IP literal") from None
    # qemu 7.2's user-mode hostfwd only parses IPv4 host addresses.
    if address.version != 4:
        raise InvalidRequest(f"invalid host address {forward.host_address!r}: hostfwd needs IPv4")
    return forward


def _validate_port_forwards(forwards: tuple[PortForward, ...]) -> None:
    seen: set[tuple[str, str, int]] = set()
    for forward in forwards:
        _validate_port_forward(forward)
        key = (forward.protocol, forward.host_address, forward.host_port)
        if key in seen:
            raise InvalidRequest(f"host port {forward.protocol}/{forward.host_port} is published twice")
        seen.add(key)


def validate_domain_spec(spec: DomainSpec) -> DomainSpec:
    validate_name("domain", spec.name)
    if spec.domain_type not in DOMAIN_TYPES:
        raise InvalidRequest(f"unsupported domain type {spec.domain_type!r}: expected kvm or qemu")
    if not isinstance(spec.arch, str) or not _ARCH_PATTERN.fullmatch(spec.arch):
        raise InvalidRequest(f"invalid architecture {spec.arch!r}")
    _validate_int("vCPU count", spec.vcpus, 1, MAX_VCPUS)
    _validate_int("memory in MiB", spec.memory_mib, 16)
    validate_absolute_path("disk", spec.disk_path)
    validate_disk_format(spec.disk_format)
    _validate_tags(spec.tags)
    _validate_port_forwards(spec.port_forwards)
    if spec.config_drive_path is not None:
        validate_absolute_path("config drive", spec.config_drive_path)
    for nic in spec.stack_nics:
        _validate_stack_nic(nic)
    _validate_vnc(spec)
    return spec


# VNC authentication keys DES with the first 8 bytes of the password; libvirt wants printable text.
_VNC_PASSWORD_PATTERN = re.compile(r"^[\x21-\x7e]{1,8}$")


def _validate_vnc(spec: DomainSpec) -> None:
    try:
        ipaddress.ip_address(spec.vnc_listen)
    except ValueError:
        raise InvalidRequest(f"invalid VNC listen address {spec.vnc_listen!r}: expected an IP literal") from None
    password = spec.vnc_password
    if password is not None and (not isinstance(password, str) or not _VNC_PASSWORD_PATTERN.fullmatch(password)):
        # Never echo the password itself into an error that may be logged.
        raise InvalidRequest("invalid VNC password: expected 1-8 printable ASCII characters without spaces")


def _validate_stack_nic(nic: StackNic) -> StackNic:
    validate_name("network", nic.network)
    if not isinstance(nic.mac_address, str) or not _MAC_PATTERN.fullmatch(nic.mac_address):
        raise InvalidRequest(f"invalid MAC address {nic.mac_address!r}")
    return nic

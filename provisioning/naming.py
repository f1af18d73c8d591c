"""Names of everything the portal makes on a host: domains, overlay volumes, base volumes.

Every name starts with the deployment name (``PORTAL_DEPLOYMENT``), so portals (or test runs)
sharing a host and a storage pool never collide. Ownership is read back strictly: a domain by
the deployment in its ``<metadata>``, an overlay volume (volumes have no metadata) by a name that
must match this deployment's pattern exactly, so another deployment whose name starts the same
("portal" and "portal-b") is never mistaken for ours.
"""

from __future__ import annotations

import hashlib
import re

from django.conf import settings

from provisioning.drivers import DomainTags
from provisioning.drivers.domain_xml import DISK_FORMATS

DEPLOYMENT_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# libvirt object names are kept to 63 characters (``domain_xml.NAME_PATTERN``). With 16, a base volume
# (deployment + "-base-" + 32 hex digits + ".qcow2") takes 60 and an overlay fits ids of 11 digits.
DEPLOYMENT_MAX_LENGTH = 16
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_ROLE_UNSAFE = re.compile(r"[^a-z0-9-]+")
_MAX_DOMAIN_NAME = 63


def validate_deployment(name: str) -> str:
    if len(name) > DEPLOYMENT_MAX_LENGTH or not DEPLOYMENT_PATTERN.fullmatch(name):
        raise ValueError(
            f"deployment name {name!r} must be at most {DEPLOYMENT_MAX_LENGTH} lowercase letters, digits "
            "and single '-' between them"
        )
    return name


def deployment() -> str:
    return validate_deployment(settings.DEPLOYMENT_NAME)


def instance_tags(*, project_id: int, stack_id: int, instance_id: int) -> DomainTags:
    return DomainTags(deployment=deployment(), project_id=project_id, stack_id=stack_id, instance_id=instance_id)


def domain_name(*, instance_id: int, role: str) -> str:
    safe_role = _ROLE_UNSAFE.sub("-", role.lower()).strip("-") or "vm"
    return f"{deployment()}-i{instance_id}-{safe_role}"[:_MAX_DOMAIN_NAME].rstrip("-")


def is_ours(tags: DomainTags | None) -> bool:
    """Whether a domain's metadata says this deployment made it."""
    return tags is not None and tags.deployment == deployment()


def overlay_volume_name(tags: DomainTags) -> str:
    """Name of an instance's copy-on-write disk; ``parse_overlay_volume_name`` reads the owner back."""
    return f"{validate_deployment(tags.deployment)}-p{tags.project_id}-s{tags.stack_id}-i{tags.instance_id}.qcow2"


def parse_overlay_volume_name(name: str) -> DomainTags | None:
    """The owner of one of this deployment's overlay volumes; ``None`` for any other name."""
    own = deployment()
    match = re.fullmatch(re.escape(own) + r"-p(\d+)-s(\d+)-i(\d+)\.qcow2", name)
    if match is None:
        return None
    project, stack, instance = (int(group) for group in match.groups())
    return DomainTags(deployment=own, project_id=project, stack_id=stack, instance_id=instance)


def parse_console_log_volume_name(name: str) -> DomainTags | None:
    """The owner of one of this deployment's serial console logs (``<overlay stem>-console.log``, and the
    ``.N`` parts the log daemon rotates out); ``None`` for any other name."""
    own = deployment()
    match = re.fullmatch(re.escape(own) + r"-p(\d+)-s(\d+)-i(\d+)-console\.log(?:\.\d{1,3})?", name)
    if match is None:
        return None
    project, stack, instance = (int(group) for group in match.groups())
    return DomainTags(deployment=own, project_id=project, stack_id=stack, instance_id=instance)


def base_volume_name(sha256: str, disk_format: str) -> str:
    """Name of a base image in a host's pool, keyed by content so instances of one image share it."""
    digest = sha256.lower()
    if not _SHA256_PATTERN.fullmatch(digest):
        raise ValueError(f"invalid sha256 {sha256!r}: expected 64 hex digits")
    if disk_format not in DISK_FORMATS:
        raise ValueError(f"invalid disk format {disk_format!r}: expected one of {sorted(DISK_FORMATS)}")
    return f"{deployment()}-base-{digest[:32]}.{disk_format}"


def config_drive_volume_name(tags: DomainTags) -> str:
    """Name of an instance's NoCloud config drive (ISO 9660) in its host's pool."""
    return f"{validate_deployment(tags.deployment)}-p{tags.project_id}-s{tags.stack_id}-i{tags.instance_id}-cidata.iso"


def parse_config_drive_volume_name(name: str) -> DomainTags | None:
    """The owner of one of this deployment's config drives; ``None`` for any other name."""
    own = deployment()
    match = re.fullmatch(re.escape(own) + r"-p(\d+)-s(\d+)-i(\d+)-cidata\.iso", name)
    if match is None:
        return None
    project, stack, instance = (int(group) for group in match.groups())
    return DomainTags(deployment=own, project_id=project, stack_id=stack, instance_id=instance)


def network_name(*, project_id: int, stack_id: int) -> str:
    """Name of a stack's private network (libvirt 9.0 networks carry no metadata: the name is the tag)."""
    return f"{deployment()}-p{project_id}-s{stack_id}-net"


def parse_network_name(name: str) -> tuple[int, int] | None:
    """(project id, stack id) of one of this deployment's stack networks; ``None`` for any other name."""
    match = re.fullmatch(re.escape(deployment()) + r"-p(\d+)-s(\d+)-net", name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def bridge_name(network: str) -> str:
    """The host bridge of a stack network: fixed by the network's name, within Linux's 15 characters.

    libvirt would pick the next free ``virbrN``; two daemons on one machine could then pick the same.
    """
    return "vb" + hashlib.sha256(network.encode()).hexdigest()[:12]


def mac_address(instance_id: int) -> str:
    """The MAC of an instance's stack NIC (QEMU's locally administered prefix); unique inside a stack."""
    low = instance_id & 0xFFFFFF
    return f"52:54:00:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"


def snapshot_name(snapshot_id: int) -> str:
    """The libvirt name of a stack snapshot on each of its domains (the portal's row id: unique, never reused)."""
    return f"{deployment()}-snap{snapshot_id}"

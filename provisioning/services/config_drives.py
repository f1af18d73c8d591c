"""Each instance's NoCloud config drive: written from the stack's rows, uploaded into its host's pool."""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

from provisioning import naming
from provisioning.config_drive import GuestConfig, Peer, write_config_drive
from provisioning.drivers import HypervisorDriver, VolumeInfo
from provisioning.models import Instance
from provisioning.templates import TemplateDocument


def guest_config(*, instance: Instance, peers: list[Instance]) -> GuestConfig:
    """What ``instance`` is told about itself and the rest of its stack."""
    stack = instance.stack
    document = TemplateDocument.from_json(stack.document)
    tier = document.tier(instance.role)
    subnet = ipaddress.IPv4Network(stack.network.cidr)
    others = [peer for peer in peers if peer.pk != instance.pk]
    wait_for = tuple(
        f"{peer.address}:{peer.live_version.service_port}"
        for dependency in tier.depends_on
        if dependency.wait_for_port
        for peer in others
        if peer.role == dependency.tier and peer.live_version.service_port
    )
    assert instance.address is not None, "every instance gets its address at launch"
    return GuestConfig(
        instance_id=f"{naming.deployment()}-i{instance.pk}",
        hostname=instance.name,
        stack=stack.name,
        tier=instance.role,
        mac_address=instance.mac_address,
        address=instance.address,
        prefix_length=subnet.prefixlen,
        peers=tuple(Peer(name=peer.name, tier=peer.role, address=peer.address or "") for peer in others),
        settings=tier.settings,
        wait_for=wait_for,
    )


def upload_config_drive(*, driver: HypervisorDriver, instance: Instance, peers: list[Instance]) -> VolumeInfo:
    """Write the drive and put it into the instance's host pool (replacing one a failed build left)."""
    host = instance.host
    assert host is not None, "placement gives every instance a host before its build is queued"
    with tempfile.TemporaryDirectory(prefix="portal-cidata-") as folder:
        path = Path(folder) / "cidata.iso"
        write_config_drive(guest_config(instance=instance, peers=peers), path)
        driver.delete_volume(pool=host.storage_pool, name=instance.config_volume_name)
        return driver.upload_volume(
            pool=host.storage_pool,
            name=instance.config_volume_name,
            source_path=str(path),
            disk_format="raw",
            capacity_bytes=path.stat().st_size,
        )

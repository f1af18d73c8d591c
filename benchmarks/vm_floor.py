"""The floor of the real-VM benchmarks: what the portal asks libvirt for, made directly with libvirt-python.

The stack's isolated network, per instance a NoCloud config drive (written and streamed into the
pool), a qcow2 overlay over the base volume the portal uploaded, and the domain, started layer by
layer in the template's order (the tiers of one layer at once). It bypasses the portal, so only
benchmarks may import ``libvirt`` outside ``provisioning/drivers``.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import libvirt

from benchmarks.processes import free_port
from benchmarks.vm_bench import DEPLOYMENT, FLOOR, FLOOR_SUBNET, POOL, POOL_PATH, Portal, Timed  # configures Django
from provisioning import naming
from provisioning.config_drive import GuestConfig, Peer, write_config_drive
from provisioning.demand import GIB
from provisioning.drivers import (
    DomainSpec,
    DomainTags,
    PortForward,
    StackNic,
)
from provisioning.drivers.domain_xml import (
    build_domain_xml,
    build_isolated_network_xml,
    build_overlay_xml,
    build_volume_xml,
)
from provisioning.services.plans import InstancePlan, plan_stack
from provisioning.subnets import guest_address
from provisioning.templates import TemplateDocument, Tier


@dataclass(frozen=True)
class FloorInstance:
    tier: str
    domain: str
    overlay_volume: str
    config_volume: str
    vcpus: int
    memory_mib: int
    capacity_bytes: int
    base_path: str
    config: GuestConfig
    port_forwards: tuple[PortForward, ...]


@dataclass(frozen=True)
class FloorStack:
    name: str
    network: str
    layers: tuple[tuple[FloorInstance, ...], ...]

    @property
    def instances(self) -> list[FloorInstance]:
        return [instance for layer in self.layers for instance in layer]

    def url(self) -> str:
        (forward,) = [fw for i in self.instances for fw in i.port_forwards]
        return f"http://{forward.host_address}:{forward.host_port}/"


def floor_stack(portal: Portal, document: TemplateDocument, index: int) -> FloorStack:
    """What the portal would make for ``document``, named for the floor: the same sizes, disks and guest config.

    The portal's own plan (``plan_stack``: catalog reads, no libvirt) gives the instances, their
    order, names and sizes; addresses come from another subnet, ports from the kernel.
    """
    name = f"floor{index}"
    plan = plan_stack(user=portal.user, project=portal.project, name=name, document=document)
    peers = [
        Peer(name=item.name, tier=item.tier, address=guest_address(FLOOR_SUBNET, position))
        for position, item in enumerate(plan.instances)
    ]

    service_ports = {item.tier: item.version.service_port for item in plan.instances}

    def waits_for(tier: Tier) -> tuple[str, ...]:
        """The peers' service ports a tier waits for, as ``provisioning.services.config_drives`` tells guests."""
        return tuple(
            f"{peer.address}:{service_ports[dependency.tier]}"
            for dependency in tier.depends_on
            if dependency.wait_for_port and service_ports[dependency.tier]
            for peer in peers
            if peer.tier == dependency.tier
        )

    def instance(position: int, item: InstancePlan) -> FloorInstance:
        image = item.version.image
        domain = f"{DEPLOYMENT}-{item.name}"
        return FloorInstance(
            tier=item.tier,
            domain=domain,
            overlay_volume=f"{domain}.qcow2",
            config_volume=f"{domain}-cidata.iso",
            vcpus=item.vcpus,
            memory_mib=item.memory_mib,
            capacity_bytes=item.disk_gib * GIB,  # exactly what the launch claimed, as the portal's build makes it
            base_path=f"{POOL_PATH}/{naming.base_volume_name(image.sha256, 'qcow2')}",
            config=GuestConfig(
                instance_id=f"{domain}-{position}",
                hostname=item.name,
                stack=name,
                tier=item.tier,
                mac_address=f"52:54:00:f1:{index % 256:02x}:{position:02x}",
                address=peers[position].address,
                prefix_length=FLOOR_SUBNET.prefixlen,
                peers=tuple(peer for p, peer in enumerate(peers) if p != position),
                settings=document.tier(item.tier).settings,
                wait_for=waits_for(document.tier(item.tier)),
            ),
            port_forwards=tuple(PortForward(host_port=free_port(), guest_port=port) for port in item.publish),
        )

    made = [instance(position, item) for position, item in enumerate(plan.instances)]
    layers = tuple(
        tuple(i for i in made if i.tier in {tier.name for tier in layer}) for layer in document.start_order()
    )
    return FloorStack(name=name, network=f"{DEPLOYMENT}-{name}-net", layers=layers)


def floor_launch(conn: libvirt.virConnect, stack: FloorStack) -> Timed:
    """Network, then layer by layer config drives, overlays, domains; seconds until the last domain started."""
    started = time.perf_counter()
    network = conn.networkDefineXML(build_isolated_network_xml(stack.network, naming.bridge_name(stack.network)))
    network.create()
    network.setAutostart(1)
    pool = conn.storagePoolLookupByName(POOL)
    for layer in stack.layers:
        if len(layer) == 1:
            _floor_instance(conn, pool, stack.network, layer[0])
        else:
            with ThreadPoolExecutor(max_workers=len(layer)) as threads:
                list(threads.map(lambda i: _floor_instance(conn, pool, stack.network, i), layer))
    return Timed(started=started, seconds=time.perf_counter() - started)


def _floor_instance(conn: libvirt.virConnect, pool: libvirt.virStoragePool, network: str, i: FloorInstance) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-cidata-") as folder:
        path = Path(folder) / "cidata.iso"
        write_config_drive(i.config, path)
        size = path.stat().st_size
        config_drive = pool.createXML(build_volume_xml(i.config_volume, size, "raw"), 0)
        stream = conn.newStream(0)
        config_drive.upload(stream, 0, size, 0)
        with path.open("rb") as source:
            stream.sendAll(lambda _stream, nbytes, opened: opened.read(nbytes), source)
        stream.finish()
    overlay = pool.createXML(build_overlay_xml(i.overlay_volume, i.capacity_bytes, i.base_path, "qcow2"), 0)
    spec = DomainSpec(
        name=i.domain,
        domain_type="qemu",
        vcpus=i.vcpus,
        memory_mib=i.memory_mib,
        disk_path=overlay.path(),
        config_drive_path=config_drive.path(),
        stack_nics=(StackNic(network=network, mac_address=i.config.mac_address),),
        tags=DomainTags(deployment=FLOOR, project_id=0, stack_id=0, instance_id=0),
        port_forwards=i.port_forwards,
    )
    conn.defineXML(build_domain_xml(spec)).create()


def floor_delete(conn: libvirt.virConnect, stack: FloorStack) -> None:
    """What the portal's delete removes: domains, their overlays and config drives, then the network."""
    pool = conn.storagePoolLookupByName(POOL)
    for instance in reversed(stack.instances):
        domain = conn.lookupByName(instance.domain)
        domain.destroy()
        domain.undefine()
        for volume in (instance.overlay_volume, instance.config_volume):
            pool.storageVolLookupByName(volume).delete(0)
    network = conn.networkLookupByName(stack.network)
    network.destroy()
    network.undefine()

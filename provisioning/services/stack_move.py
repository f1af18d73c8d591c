"""Moving a shelved stack to another host, when its own host has no room to unshelve it.

The claim (in the unshelve's transaction, under the project's and the stack's locks) places the
whole stack as a launch would (``claim_host``: vCPUs, memory, disk and instance count on the new
host), gives the old host back the disks and places its instances held, and points the rows at the
new host: instances, the network (a free subnet there, the same addresses in it) and the published
ports (free ports there). The job then copies each tier's disk through libvirt's storage API
(``download_volume`` from the old pool, a local rebase of the overlay onto the new host's copy of
its base image, ``upload_volume`` into the new pool), writes new config drives, starts the tiers in
dependency order, and only then removes the stack from the old host. The guests boot afresh there:
a managed save stays with the host that made it.

A move that fails removes what it made on the new host and puts the rows back (old host, old
subnet, old ports, counters), so the stack stays shelved where its disks still are. A stack with
snapshots does not move: libvirt keeps their records beside the domain, on the old host.
"""

from __future__ import annotations

import ipaddress
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from catalog.image_cache import use_image
from catalog.images import ImageError, rebase_overlay
from portal import errors
from provisioning import allocations, naming
from provisioning.consoles.backlog import delete_console_log
from provisioning.demand import GIB, InstanceDemand, StackDemand
from provisioning.drivers import DriverError, HypervisorDriver
from provisioning.models import Host, Instance, PublishedPort, Stack, StackNetwork, StackSnapshot, Status
from provisioning.placement import allocate_ports, claim_host
from provisioning.services.base_images import ensure_base_volume
from provisioning.services.build import InstanceDisks, start_instance_domain
from provisioning.services.config_drives import upload_config_drive
from provisioning.services.endpoint_probe import queue_endpoints_watch
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.subnets import allocate_subnet, guest_address

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """Where a moving stack was, to put its rows back if the move fails (job arguments: plain values)."""

    host_id: int
    cidr: str
    ports: tuple[tuple[int, int], ...]  # (published port id, its port on the old host)

    def as_args(self) -> tuple[object, ...]:
        return (self.host_id, self.cidr, [list(pair) for pair in self.ports])

    @classmethod
    def from_args(cls, host_id: int, cidr: str, ports: list[list[int]]) -> Origin:
        return cls(host_id=host_id, cidr=cidr, ports=tuple((pair[0], pair[1]) for pair in ports))


def claim_elsewhere(stack: Stack, *, full_host: Host) -> Origin:
    """Place the locked, shelved ``stack`` on another host and point its rows there (see the module)."""
    if StackSnapshot.objects.filter(stack=stack).exclude(status=StackSnapshot.State.FAILED).exists():
        raise errors.NoCapacity(
            f"host {full_host.name} has no room to unshelve this stack now, and a stack with snapshots cannot "
            "move to another host (libvirt keeps their records on its host): delete them, or try again later"
        )
    instances = list(stack.instances.exclude(status=Status.DELETED).select_related("appliance_version").order_by("pk"))
    demand = StackDemand(
        instances=tuple(
            InstanceDemand(
                tier=i.role, vcpus=i.vcpus, memory_mib=i.memory_mib, disk_gib=i.disk_gib, arch=i.live_version.arch
            )
            for i in instances
        ),
        lease_seconds=60,  # placement does not weigh leases
    )
    target = claim_host(demand)  # NoCapacity names what no host has
    if target.pk == full_host.pk:
        raise errors.NoCapacity(f"host {full_host.name} has no room to unshelve this stack now; try again later")
    network = StackNetwork.objects.select_for_update().get(stack=stack)
    ports = list(PublishedPort.objects.filter(instance__stack=stack).order_by("pk"))
    origin = Origin(host_id=full_host.pk, cidr=network.cidr, ports=tuple((p.pk, p.host_port) for p in ports))
    live = Instance.objects.filter(pk__in=[i.pk for i in instances])
    allocations.release(live)  # the old host gets back their disks and places (claim_host added them on the new one)
    new_ports = allocate_ports(target, len(ports)) if ports else []
    _point_at(stack, instances, network, ports, host=target, subnet=allocate_subnet(target), host_ports=new_ports)
    live.update(status=Status.UNSHELVING)
    Stack.objects.filter(pk=stack.pk).update(moving_from=full_host)  # its disks there stay claimed
    stack_event(stack, f"moving from {full_host.name} to {target.name}: {full_host.name} has no room for it")
    return origin


def _point_at(
    stack: Stack,
    instances: list[Instance],
    network: StackNetwork,
    ports: list[PublishedPort],
    *,
    host: Host,
    subnet: ipaddress.IPv4Network,
    host_ports: list[int],
) -> None:
    """Point the stack's rows at ``host``: its network on ``subnet``, its ports on ``host_ports`` (in order)."""
    network.host, network.cidr = host, str(subnet)
    network.save(update_fields=["host", "cidr"])
    for index, instance in enumerate(instances):  # the launch's order: addresses keep their places
        Instance.objects.filter(pk=instance.pk).update(host=host, address=guest_address(subnet, index))
    for port, host_port in zip(ports, host_ports, strict=True):
        port.host, port.host_port = host, host_port
        port.save(update_fields=["host", "host_port"])


def put_back(stack: Stack, origin: Origin) -> None:
    """A move that failed: the rows point at the old host again and the stack is shelved there, as it was."""
    source = Host.objects.get(pk=origin.host_id)
    with transaction.atomic():
        Stack.objects.select_for_update().get(pk=stack.pk)
        instances = list(stack.instances.exclude(status=Status.DELETED).order_by("pk"))
        live = Instance.objects.filter(pk__in=[i.pk for i in instances])
        allocations.release(live)  # everything the new host was given for them
        network = StackNetwork.objects.select_for_update().get(stack=stack)
        old_ports = dict(origin.ports)
        ports = [p for p in PublishedPort.objects.filter(instance__stack=stack).order_by("pk") if p.pk in old_ports]
        _point_at(
            stack,
            instances,
            network,
            ports,
            host=source,
            subnet=ipaddress.IPv4Network(origin.cidr),
            host_ports=[old_ports[p.pk] for p in ports],
        )
        live.update(status=Status.SHELVED)
        allocations.hold(live)  # the old host holds their disks and places again
        Stack.objects.filter(pk=stack.pk).update(moving_from=None)


def move_stack(stack: Stack, origin: Origin, layers: list[list[Instance]]) -> None:
    """The job's side: copy the disks to the stack's new host, start it there, then clear the old host.

    Raises ``DriverError`` (or ``ImageError``) once everything made on the new host is removed again.
    """
    source = Host.objects.get(pk=origin.host_id)
    target = layers[0][0].host
    assert target is not None
    instances = [i for layer in layers for i in layer]
    network, bridge = stack.network.name, naming.bridge_name(stack.network.name)
    try:
        with driver_for(source) as old, driver_for(target) as new:
            # The bridge's name follows from the network's: two hosts sharing a kernel (two daemons on
            # one machine) cannot both have it, so the old host's (its guests are off) goes first.
            old.delete_network(name=network)
            new.ensure_network(name=network, bridge=bridge)
            disks = {
                i.pk: _copy_disk(stack, i, old=old, new=new, source_pool=source.storage_pool, peers=instances)
                for i in instances
            }
            for layer in layers:
                for instance in layer:
                    info = start_instance_domain(
                        driver=new, host=target, instance=instance, disks=disks[instance.pk], stack=stack
                    )
                    Instance.objects.filter(pk=instance.pk).update(status=Status.RUNNING, vnc_port=info.vnc_port)
                    stack_event(stack, f"{instance.name} started on {target.name}")
            queue_endpoints_watch(stack_id=stack.pk)
    except (DriverError, ImageError):
        _remove_from(target, stack, instances)
        _restore_network(source, stack, network=network, bridge=bridge)
        raise
    _remove_from(source, stack, instances)
    Stack.objects.filter(pk=stack.pk).update(moving_from=None, shelved_with_memory=False)


def _restore_network(host: Host, stack: Stack, *, network: str, bridge: str) -> None:
    """The old host's stack network back, for the guests that stay there after a failed move."""
    try:
        with driver_for(host) as driver:
            driver.ensure_network(name=network, bridge=bridge)
    except DriverError as exc:
        stack_event(stack, f"could not set its network up again on {host.name}: {exc.message}", is_error=True)


def _copy_disk(
    stack: Stack,
    instance: Instance,
    *,
    old: HypervisorDriver,
    new: HypervisorDriver,
    source_pool: str,
    peers: list[Instance],
) -> InstanceDisks:
    target = instance.host
    assert target is not None
    image = use_image(instance.live_version)
    if image is None:
        raise DriverError(f"the image of {instance.appliance_version} is no longer in the image cache")
    base = ensure_base_volume(driver=new, host=target, image=image, stack=stack)
    with tempfile.TemporaryDirectory(prefix="portal-move-") as folder:
        local = Path(folder) / "overlay.qcow2"
        copied = old.download_volume(pool=source_pool, name=instance.volume_name, dest_path=str(local))
        rebase_overlay(local, backing_path=base.path, backing_format=base.disk_format)
        new.delete_volume(pool=target.storage_pool, name=instance.volume_name)  # one a failed move left
        overlay = new.upload_volume(
            pool=target.storage_pool,
            name=instance.volume_name,
            source_path=str(local),
            disk_format="qcow2",
            capacity_bytes=instance.disk_gib * GIB,
        )
    stack_event(stack, f"{instance.name}: disk copied to {target.name} ({copied // (1024 * 1024)} MiB)")
    config_drive = upload_config_drive(driver=new, instance=instance, peers=peers)
    return InstanceDisks(overlay=overlay.path, config_drive=config_drive.path)


def _remove_from(host: Host, stack: Stack, instances: list[Instance]) -> None:
    """The stack's domains (with any managed save), disks and network off ``host``; problems are said, not raised.

    Whatever is left carries the portal's tags and names: the reconciler removes it later.
    """
    try:
        with driver_for(host) as driver:
            for instance in instances:
                driver.destroy_domain(name=instance.domain_name)
                driver.delete_volume(pool=host.storage_pool, name=instance.volume_name)
                driver.delete_volume(pool=host.storage_pool, name=instance.config_volume_name)
                delete_console_log(driver=driver, host=host, instance=instance)
            driver.delete_network(name=stack.network.name)
    except DriverError as exc:
        logger.warning("stack %s: clearing host %s after a move: %s", stack.pk, host.name, exc.detail or exc.message)
        stack_event(stack, f"could not clear {host.name} yet ({exc.message}); the reconciler will", is_error=True)

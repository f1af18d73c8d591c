"""The worker's side of a launch: bring every instance of a pending stack to running.

Image download (catalog), base volume upload, copy-on-write overlay, domain define and start. A
failed build removes what it made and records a readable reason; a stack deleted mid-build stops
quietly, because the teardown owns it from then on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from catalog.services import CatalogError, image_ensure_cached
from provisioning import naming
from provisioning.demand import GIB
from provisioning.drivers import (
    DomainInfo,
    DomainSpec,
    DriverError,
    HypervisorDriver,
    PortForward,
    PortUnavailable,
    StackNic,
)
from provisioning.models import Host, Instance, PublishedPort, Stack, Status
from provisioning.placement import allocate_port
from provisioning.progress import announce_stack_change
from provisioning.services.base_images import ensure_base_volume
from provisioning.services.cleanup import remove_stack_resources
from provisioning.services.config_drives import upload_config_drive
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.launch import instance_tags
from provisioning.templates import TemplateDocument

logger = logging.getLogger(__name__)

PORT_ATTEMPTS = 3


class _StackLeftBuilding(Exception):
    """The stack was deleted while it was being built."""


def stack_build(*, stack: Stack) -> Stack:
    """Bring every instance of a pending stack to running; on failure clean up and say why."""
    started = Stack.objects.filter(pk=stack.pk, status=Status.PENDING).update(status=Status.BUILDING)
    if not started:
        stack.refresh_from_db()
        return stack  # deleted or already handled while queued
    stack_event(stack, "building")
    instances = list(stack.instances.select_related("host", "appliance_version__image", "stack", "stack__network"))
    try:
        # One connection for the whole build: every tier of a stack runs on its network's host.
        with driver_for(stack.network.host) as driver:
            _ensure_stack_network(stack, driver)
            for layer in _start_layers(stack, instances):
                for instance in layer:
                    _build_instance(stack=stack, instance=instance, peers=instances, driver=driver)
    except _StackLeftBuilding:
        # Not a failure. The teardown owns the stack now; this only removes what the build made
        # after the teardown looked.
        remove_stack_resources(stack, instances)
        stack_event(stack, "build stopped: the stack is being deleted")
        stack.refresh_from_db()
        return stack
    except (DriverError, CatalogError) as exc:
        _fail_stack(stack, instances, str(exc))
        return stack
    except Exception as exc:
        # A bug must not leave a stack "building" forever with a VM nobody owns.
        logger.exception("stack %s build crashed", stack.pk)
        _fail_stack(stack, instances, f"internal error: {exc.__class__.__name__}: {exc}")
        return stack
    with transaction.atomic():
        marked = Stack.objects.filter(pk=stack.pk, status=Status.BUILDING).update(
            status=Status.RUNNING, running_at=timezone.now(), status_reason=""
        )
    if marked:
        stack_event(stack, "running")
    stack.refresh_from_db()
    return stack


def _require_building(stack: Stack) -> None:
    status = Stack.objects.filter(pk=stack.pk).values_list("status", flat=True).first()
    if status != Status.BUILDING:
        raise _StackLeftBuilding(f"stack became {status} while building")


def _start_layers(stack: Stack, instances: list[Instance]) -> list[list[Instance]]:
    """The instances in the template's start order: a tier starts after the tiers it depends on."""
    document = TemplateDocument.from_json(stack.document)
    return [[i for i in instances if i.role in {tier.name for tier in layer}] for layer in document.start_order()]


def _ensure_stack_network(stack: Stack, driver: HypervisorDriver) -> None:
    network = stack.network
    driver.ensure_network(name=network.name, bridge=naming.bridge_name(network.name))
    stack_event(stack, f"network {network.cidr} ready on {network.host.name}")


def _build_instance(*, stack: Stack, instance: Instance, peers: list[Instance], driver: HypervisorDriver) -> None:
    version = instance.appliance_version
    Instance.objects.filter(pk=instance.pk).update(status=Status.BUILDING)
    if version.image.status != version.image.Status.READY:
        stack_event(stack, f"downloading image for {version} ({version.size_bytes // (1024 * 1024)} MiB)")
    # Download progress lives on the cached image; nudging watchers lets the page redraw the bar.
    image = image_ensure_cached(version=version, progress=lambda _done, _total: announce_stack_change(stack.pk))
    host = instance.host
    assert host is not None, "placement gives every instance a host before its build is queued"
    base = ensure_base_volume(driver=driver, host=host, image=image, stack=stack)
    config_drive = upload_config_drive(driver=driver, instance=instance, peers=peers)
    # No transaction is held across libvirt calls (a slow host would block every write). A delete
    # racing this build is settled by whoever looks last: a teardown that ran before the domain
    # existed found nothing to remove, so the build sees the stack left "building" and removes it.
    _require_building(stack)
    overlay = driver.create_overlay(
        pool=host.storage_pool,
        name=instance.volume_name,
        backing=base,
        capacity_bytes=max(instance.disk_gib * GIB, base.capacity_bytes),
    )
    disks = _Disks(overlay=overlay.path, config_drive=config_drive.path)
    try:
        info = _start_domain(driver=driver, host=host, instance=instance, disks=disks, stack=stack)
    except DriverError:
        driver.delete_volume(pool=host.storage_pool, name=instance.volume_name)
        raise
    marked = Instance.objects.filter(pk=instance.pk, stack__status=Status.BUILDING).update(
        status=Status.RUNNING, vnc_port=info.vnc_port
    )
    if not marked:
        raise _StackLeftBuilding("stack was deleted while its domain started")
    stack_event(stack, f"{instance.name} started on {host.name}")


@dataclass(frozen=True)
class _Disks:
    overlay: str
    config_drive: str


def _start_domain(
    *, driver: HypervisorDriver, host: Host, instance: Instance, disks: _Disks, stack: Stack
) -> DomainInfo:
    """Define and start the domain; if a published port was grabbed by someone else meanwhile, move it."""
    attempts_left = PORT_ATTEMPTS
    while True:
        try:
            return driver.define_and_start(_domain_spec(host=host, instance=instance, disks=disks))
        except PortUnavailable:
            attempts_left -= 1
            if not attempts_left:
                raise
            _move_published_ports(instance=instance, host=host, stack=stack)


def _domain_spec(*, host: Host, instance: Instance, disks: _Disks) -> DomainSpec:
    return DomainSpec(
        name=instance.domain_name,
        domain_type=host.domain_type,
        vcpus=instance.vcpus,
        memory_mib=instance.memory_mib,
        disk_path=disks.overlay,
        config_drive_path=disks.config_drive,
        stack_nics=(StackNic(network=instance.stack.network.name, mac_address=instance.mac_address),),
        tags=instance_tags(instance),
        # The console proxy reaches VNC on the host's management address and authenticates with this.
        vnc_listen=host.console_address,
        vnc_password=instance.vnc_password or None,
        port_forwards=tuple(
            PortForward(host_port=p.host_port, guest_port=p.guest_port, host_address=host.public_address)
            for p in instance.published_ports.all()
        ),
    )


def _move_published_ports(*, instance: Instance, host: Host, stack: Stack) -> None:
    with transaction.atomic():
        Host.objects.select_for_update().get(pk=host.pk)  # the same lock launches take to reserve ports
        for published in instance.published_ports.all():
            old_port = published.host_port
            published.host_port = allocate_port(host)
            published.save(update_fields=["host_port"])
            stack_event(
                stack, f"port {old_port} on {host.name} is taken by another program; using {published.host_port}"
            )


def _fail_stack(stack: Stack, instances: list[Instance], reason: str) -> None:
    logger.warning("stack %s failed: %s", stack.pk, reason)
    cleanup_problems = remove_stack_resources(stack, instances)
    if cleanup_problems:
        reason = f"{reason} (cleanup incomplete: {'; '.join(cleanup_problems)})"
    with transaction.atomic():
        Instance.objects.filter(stack=stack).exclude(status=Status.DELETED).update(
            status=Status.ERROR, status_reason=reason[:1000]
        )
        if not cleanup_problems:
            PublishedPort.objects.filter(instance__stack=stack).delete()
        Stack.objects.filter(pk=stack.pk).exclude(status__in=(Status.DELETING, Status.DELETED)).update(
            status=Status.ERROR, status_reason=reason
        )
    stack_event(stack, f"failed: {reason}", is_error=True)
    stack.refresh_from_db()

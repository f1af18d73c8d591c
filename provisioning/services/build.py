"""The worker's side of a launch: bring every instance of a pending stack to running.

First the images: a stack whose images are not all usable yet stays pending while tasks of their
own download them (``image_waits``), and is built when they end. Then base volume upload,
copy-on-write overlay of exactly the disk size the launch claimed, domain define and start. A
failed build removes what it made and records a readable reason; a stack deleted mid-build stops
quietly, because the teardown owns it from then on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.image_cache import use_image
from catalog.models import ApplianceVersion
from provisioning import naming
from provisioning.consoles.backlog import console_log_path
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
from provisioning.endpoints import bind_address
from provisioning.models import Host, Instance, PublishedPort, Stack, Status
from provisioning.placement import allocate_port
from provisioning.qos import domain_qos
from provisioning.resize_limits import vcpu_ceiling
from provisioning.services.base_images import ensure_base_volume
from provisioning.services.cleanup import remove_stack_resources
from provisioning.services.config_drives import upload_config_drive
from provisioning.services.endpoint_probe import queue_endpoints_watch
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.image_waits import disk_too_small, image_download_queue, stack_images_outlook
from provisioning.services.launch import instance_tags
from provisioning.templates import TemplateDocument

logger = logging.getLogger(__name__)

PORT_ATTEMPTS = 3


class _StackLeftBuilding(Exception):
    """The stack was deleted while it was being built."""


def stack_build(*, stack: Stack) -> Stack:
    """Bring every instance of a pending stack to running once its images are here; on failure, clean up and say why."""
    pending = Stack.objects.filter(pk=stack.pk, status=Status.PENDING)
    if not pending.exists():
        stack.refresh_from_db()
        return stack  # deleted or already handled while queued
    instances = list(stack.instances.select_related("host", "appliance_version__image", "stack", "stack__network"))
    outlook = stack_images_outlook(stack=stack, instances=instances)
    if outlook.failure:
        _fail_before_building(stack, outlook.failure)
        return stack
    if outlook.missing:
        _wait_for_images(stack, outlook.missing)
        return stack
    started = pending.update(status=Status.BUILDING)
    if not started:
        stack.refresh_from_db()
        return stack
    stack_event(stack, "building")
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
        queue_endpoints_watch(stack_id=stack.pk)
    stack.refresh_from_db()
    return stack


def _wait_for_images(stack: Stack, missing: list[ApplianceVersion]) -> None:
    """Leave the stack pending and ask for its downloads; each one's end queues this build again."""
    # Touched so the watchdog counts from now: it queues a pending stack again only when nothing moved for long.
    if Stack.objects.filter(pk=stack.pk, status=Status.PENDING).update(updated_at=timezone.now()):
        names = ", ".join(str(version) for version in missing)
        stack_event(stack, f"waiting for the image of {names} to download")
    for version in missing:
        wait = image_download_queue(version)
        if wait:
            stack_event(stack, f"waiting: {wait}")
    stack.refresh_from_db()


def _fail_before_building(stack: Stack, reason: str) -> None:
    """Fail a stack whose build never started: nothing exists on its host yet, only rows to release."""
    logger.warning("stack %s failed: %s", stack.pk, reason)
    with transaction.atomic():
        failed = Stack.objects.filter(pk=stack.pk, status=Status.PENDING).update(
            status=Status.ERROR, status_reason=reason
        )
        if failed:
            Instance.objects.filter(stack=stack).exclude(status=Status.DELETED).update(
                status=Status.ERROR, status_reason=reason[:1000]
            )
            PublishedPort.objects.filter(instance__stack=stack).delete()
    if failed:
        stack_event(stack, f"failed: {reason}", is_error=True)
    stack.refresh_from_db()


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
    version = instance.live_version
    Instance.objects.filter(pk=instance.pk).update(status=Status.BUILDING)
    image = use_image(version)
    if image is None:  # checked before the build started; an instance's image is never evicted
        raise CatalogError(f"the image for {version} is no longer in the image cache")
    host = instance.host
    assert host is not None, "placement gives every instance a host before its build is queued"
    base = ensure_base_volume(driver=driver, host=host, image=image, stack=stack)
    # The overlay is the disk the launch claimed against quota and host, no larger: an image that
    # does not fit it is refused rather than given a bigger disk than was counted.
    claimed_bytes = instance.disk_gib * GIB
    if base.capacity_bytes > claimed_bytes:
        raise CatalogError(disk_too_small(version, base.capacity_bytes, instance))
    config_drive = upload_config_drive(driver=driver, instance=instance, peers=peers)
    # No transaction is held across libvirt calls (a slow host would block every write). A delete
    # racing this build is settled by whoever looks last: a teardown that ran before the domain
    # existed found nothing to remove, so the build sees the stack left "building" and removes it.
    _require_building(stack)
    overlay = driver.create_overlay(
        pool=host.storage_pool,
        name=instance.volume_name,
        backing=base,
        capacity_bytes=claimed_bytes,
    )
    disks = InstanceDisks(overlay=overlay.path, config_drive=config_drive.path)
    try:
        info = start_instance_domain(driver=driver, host=host, instance=instance, disks=disks, stack=stack)
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
class InstanceDisks:
    overlay: str
    config_drive: str


def start_instance_domain(
    *, driver: HypervisorDriver, host: Host, instance: Instance, disks: InstanceDisks, stack: Stack
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
            move_published_ports(instance=instance, host=host, stack=stack)


def port_forwards(*, host: Host, instance: Instance) -> tuple[PortForward, ...]:
    """The instance's published ports as the host's hypervisor publishes them."""
    return tuple(
        PortForward(host_port=p.host_port, guest_port=p.guest_port, host_address=bind_address(host))
        for p in instance.published_ports.all()
    )


def _domain_spec(*, host: Host, instance: Instance, disks: InstanceDisks) -> DomainSpec:
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
        port_forwards=port_forwards(host=host, instance=instance),
        # The serial output is kept beside the disk, so a console opened late shows what came before.
        console_log_path=console_log_path(instance=instance, disk_path=disks.overlay),
        max_vcpus=vcpu_ceiling(instance=instance, host=host),
        qos=domain_qos(instance=instance, host=host),
    )


def move_published_ports(*, instance: Instance, host: Host, stack: Stack) -> None:
    """New host ports for the instance's published ports (one was taken by a program outside the portal)."""
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

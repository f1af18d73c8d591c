"""Moving a running stack to another host, live: every tier and its network, with libvirt's own migration.

Moving one instance moves its whole stack (its tiers share a private network on one host). Accepting
it (operators only) claims the target under its row lock, as launches claim; the source keeps its
claim until the move ends (``Stack.moving_from``); the stack is ``MIGRATING``, an ``Operation`` reports.

The job (``run_stack_migration``) prepares the target in dependency order (the stack network under
a bridge of the target's own, base images, each tier's overlay and config drive, new host ports),
then moves the tiers together, pointing each one's rows at the target as it arrives; then it clears
the source and releases its claim. A move that fails brings back the tiers that had arrived,
removes what it made on the target, puts the rows back and releases the target's claim: the stack
keeps running on its source, and the operation says why it failed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F

from catalog.image_cache import use_image
from portal import audit, errors
from portal.scoping import User, is_operator
from portal.task_queues import Queue, enqueue
from provisioning import naming
from provisioning.consoles.backlog import console_log_path, delete_console_log
from provisioning.demand import GIB
from provisioning.drivers import DomainInfo, DriverError, HypervisorDriver, PortForward, Unsupported
from provisioning.drivers.migration_types import DestinationLayout, MigrationRequest
from provisioning.endpoints import bind_address
from provisioning.models import Host, Instance, Operation, PublishedPort, Stack, StackNetwork, Status
from provisioning.placement import allocate_ports
from provisioning.services import stack_jobs
from provisioning.services.base_images import ensure_base_volume
from provisioning.services.config_drives import upload_config_drive
from provisioning.services.endpoint_probe import forget_readiness, queue_endpoints_watch
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.operations import open_operation, operation_finished, operation_progress, operation_running

logger = logging.getLogger(__name__)

TASK = "provisioning.migration_tasks.migrate_stack"
WHOLE_STACK = "a stack's tiers share one private network on one host, so all of them move"
COUNTERS = ("allocated_vcpus", "allocated_memory_mib", "allocated_disk_gib", "allocated_instances")


def begin_stack_migration(
    *, user: User, stack: Stack, target: Host | None = None, instance: Instance | None = None, queue: bool = True
) -> Operation:
    """Accept moving ``stack`` (or the stack of ``instance``) to ``target`` or to placement's choice."""
    if not is_operator(user):
        raise errors.PermissionDenied("only operators move stacks between hosts")
    if instance is not None and instance.stack_id != stack.pk:
        raise errors.Invalid("the instance is not part of that stack")
    if stack.status != Status.RUNNING:  # checked again under the lock; this spares asking the hosts
        raise errors.WrongState(_refusal(stack.status))
    try:
        source = stack_jobs.stack_host(stack)
    except DriverError:
        raise errors.WrongState("the stack has no instance on a host to move") from None
    _require_live_migration(source, what=f"its host {source.name}", field=None)
    if target is not None:
        _check_named_target(target, source=source)
        _require_live_migration(target, what=f"host {target.name}", field="host")
    with transaction.atomic():
        locked = Stack.objects.select_for_update().select_related("project").get(pk=stack.pk)
        if locked.status != Status.RUNNING:
            raise errors.WrongState(_refusal(locked.status))
        instances = list(locked.instances.exclude(status=Status.DELETED))
        chosen = _claim_target(
            _amounts(instances), source=source, named=target, arches={i.live_version.arch for i in instances}
        )
        network = StackNetwork.objects.select_for_update().get(stack=locked)
        if StackNetwork.objects.filter(host=chosen, cidr=network.cidr, released_at__isnull=True).exists():
            raise errors.NoCapacity(f"host {chosen.name} already uses this stack's subnet {network.cidr}")
        locked.status_before, locked.status, locked.moving_from = locked.status, Status.MIGRATING, source
        locked.save(update_fields=["status", "status_before", "moving_from", "updated_at"])
        why = f" (for {instance.name}: {WHOLE_STACK})" if instance is not None else ""
        kind = Operation.Kind.MIGRATE_INSTANCE if instance is not None else Operation.Kind.MIGRATE_STACK
        asked = {"host": target.name} if target is not None else {}
        detail = f"waiting to move from {source.name} to {chosen.name}{why}"
        operation = open_operation(
            kind=kind,
            user=user,
            stack=locked,
            instance=instance,
            host=source,
            target_host=chosen,
            request=asked,
            detail=detail,
        )
        stack_event(locked, f"move to {chosen.name}{why}: {stack_jobs.QUEUED}", actor=user)
        audit.record(actor=user, action="stack.migrate", target=locked, project=locked.project, host=chosen.name)
        if queue:
            name = f"migrate-stack-{locked.pk}"
            transaction.on_commit(lambda: enqueue(TASK, locked.pk, operation.pk, queue=Queue.BUILDS, task_name=name))
    return operation


def _refusal(status: str) -> str:
    if status in stack_jobs.BUSY_STATUSES:
        return f"the stack is {status}: wait until that is done"
    return f"cannot move a stack that is {status} (only one that is running)"


def _require_live_migration(host: Host, *, what: str, field: str | None) -> None:
    """Asked of the host's hypervisor itself (outside any transaction): callers never judge by driver names."""
    try:
        with driver_for(host) as driver:
            able = driver.supports_live_migration()
    except DriverError as exc:
        raise errors.WrongState(f"{what} did not answer: {exc.message}") from None
    if not able:
        message = f"{what} cannot move running guests (its hypervisor has no live migration)"
        raise errors.Invalid.for_field(field, message) if field else errors.WrongState(message)


def _check_named_target(target: Host, *, source: Host) -> None:
    if target.pk == source.pk:
        raise errors.Invalid.for_field("host", f"the stack already runs on {source.name}")
    if not target.enabled or target.draining or target.maintenance:
        raise errors.WrongState(f"host {target.name} takes no new stacks (disabled, draining or in maintenance)")
    if not target.healthy:
        raise errors.WrongState(f"host {target.name} is not healthy")


def _amounts(instances: list[Instance]) -> dict[str, int]:
    return {
        "allocated_vcpus": sum(i.vcpus for i in instances),
        "allocated_memory_mib": sum(i.memory_mib for i in instances),
        "allocated_disk_gib": sum(i.disk_gib for i in instances),
        "allocated_instances": len(instances),
    }


def _missing_room(host: Host, amounts: dict[str, int], arches: set[str]) -> str:
    """What ``host`` lacks for the stack, in words; "" when it has room."""
    lacking = sorted(arches - set(host.guest_arches.split(",")))
    if lacking:
        return f"runs no {', '.join(lacking)} guests"
    vcpus_free = host.vcpu_capacity - host.allocated_vcpus
    memory_free = int(host.memory_capacity_mib * host.memory_overcommit) - host.allocated_memory_mib
    disk_free = int(host.pool_capacity_bytes * host.disk_overcommit) // GIB - host.allocated_disk_gib
    if amounts["allocated_vcpus"] > vcpus_free:
        return f"has {max(vcpus_free, 0)} vCPU free, {amounts['allocated_vcpus']} needed"
    if amounts["allocated_memory_mib"] > memory_free:
        return f"has {max(memory_free, 0)} MiB of memory free, {amounts['allocated_memory_mib']} needed"
    if host.pool_capacity_bytes and amounts["allocated_disk_gib"] > disk_free:
        return f"has {max(disk_free, 0)} GiB of disk free, {amounts['allocated_disk_gib']} needed"
    return ""


def _claim_target(amounts: dict[str, int], *, source: Host, named: Host | None, arches: set[str]) -> Host:
    """Claim the named host, or the usable host of the source's kind with most memory free, as launches claim:
    its row locked before it is judged, its generation bumped so launches that weighed it read it again."""
    usable = Host.objects.filter(enabled=True, healthy=True, draining=False, maintenance=False).exclude(pk=source.pk)
    if named is not None:
        usable = usable.filter(pk=named.pk)
    else:  # a running guest moves only between hypervisors of one kind
        usable = usable.filter(hypervisor=source.hypervisor, domain_type=source.domain_type)
    reasons = []
    for host in sorted(usable, key=lambda h: h.allocated_memory_mib - h.memory_capacity_mib):
        locked = Host.objects.select_for_update().get(pk=host.pk)
        missing = _missing_room(locked, amounts, arches)
        if not missing:
            Host.objects.filter(pk=locked.pk).update(
                **{name: F(name) + amounts[name] for name in COUNTERS}, generation=F("generation") + 1
            )
            return locked
        reasons.append(f"{locked.name} {missing}")
    if named is not None:
        raise errors.NoCapacity(f"host {'; '.join(reasons) or named.name + ' takes no new stacks'}")
    if not reasons:
        raise errors.NoCapacity(f"no host but {source.name} is enabled, healthy, not draining and not in maintenance")
    raise errors.NoCapacity(f"no other host has room for the stack: {'; '.join(reasons)}")


def _give_back(host_id: int, amounts: dict[str, int]) -> None:
    Host.objects.filter(pk=host_id).update(**{name: F(name) - amounts[name] for name in COUNTERS})


@dataclass
class _Move:
    stack: Stack
    operation_id: int
    source: Host
    target: Host
    instances: list[Instance]
    origin_ports: dict[int, tuple[int, int]]  # published port id -> (host id, host port) before the move
    arrived: list[Instance]
    last_report: float = 0.0

    def report(self, done: int, total: int) -> None:
        now = time.monotonic()
        if total and now - self.last_report >= 1:
            self.last_report = now
            detail = f"moving {len(self.instances)} tiers to {self.target.name}: {done * 100 // total}% sent"
            operation_progress(self.operation_id, percent=10 + 85 * done // total, detail=detail)

    def arrive(self, name: str, vnc_port: int | None) -> None:  # a tier runs on the target: its row follows
        (instance,) = [i for i in self.instances if i.domain_name == name]
        Instance.objects.filter(pk=instance.pk).update(host=self.target, vnc_port=vnc_port)
        self.arrived.append(instance)
        stack_event(self.stack, f"{instance.name} moved to {self.target.name}, running")


def run_stack_migration(*, stack_id: int, operation_id: int) -> bool:
    """Move the stack (see the module); True when it moved. A failed move is reported, never raised."""
    stack = stack_jobs.claim_job(stack_id, Status.MIGRATING)
    operation = Operation.objects.select_related("host", "target_host").filter(pk=operation_id).first()
    if stack is None or operation is None or operation.finished or not operation.host or not operation.target_host:
        return False
    origin_ports = {p.pk: (p.host_id, p.host_port) for p in PublishedPort.objects.filter(instance__stack=stack)}
    instances = [i for layer in stack_jobs.instance_layers(stack) for i in layer]
    move = _Move(stack, operation_id, operation.host, operation.target_host, instances, origin_ports, arrived=[])
    operation_running(operation_id, detail=f"preparing {move.target.name} for {stack.name}")
    try:
        with driver_for(move.source) as old, driver_for(move.target) as new:
            if not new.supports_live_migration():
                raise Unsupported(f"host {move.target.name} cannot receive running guests")
            network = stack.network.name
            new.ensure_network(name=network, bridge=naming.bridge_name(f"{network}@{move.target.pk}"))
            # Prepared one by one, moved together: tiers on two hosts cannot reach each other (their
            # network cannot span hosts), so their switch-overs should land close together.
            requests = [_prepare(move, instance, new=new) for instance in move.instances]
            operation_progress(operation_id, percent=10, detail=f"moving {stack.name} to {move.target.name}")
            outcomes = old.migrate_domains(
                requests, target=new, progress=move.report, arrived=lambda name, info: move.arrive(name, info.vnc_port)
            )
        failed = next((outcome for outcome in outcomes.values() if isinstance(outcome, DriverError)), None)
        if failed is not None:
            raise failed
    except Exception as exc:  # whatever failed, the stack must be left running on its source
        if not isinstance(exc, DriverError | errors.PortalError):
            logger.exception("stack %s: move to %s crashed", stack_id, move.target.name)
        _fail(move, exc.message if isinstance(exc, DriverError) else str(exc))
        return False
    _succeed(move)
    return True


def _fresh_overlay(driver: HypervisorDriver, host: Host, instance: Instance, stack: Stack) -> str:
    """An empty overlay for the instance on ``host``, over the host's copy of its base image: what the
    migration mirrors the guest's disk into (only the overlay's own clusters travel)."""
    image = use_image(instance.live_version)
    if image is None:
        raise DriverError(f"the image of {instance.appliance_version} is no longer in the image cache")
    base = ensure_base_volume(driver=driver, host=host, image=image, stack=stack)
    driver.delete_volume(pool=host.storage_pool, name=instance.volume_name)  # stale: a failed move's, or the old copy
    capacity = instance.disk_gib * GIB
    return driver.create_overlay(
        pool=host.storage_pool, name=instance.volume_name, backing=base, capacity_bytes=capacity
    ).path


def _request(
    instance: Instance, host: Host, *, disk: str, config: str, forwards: tuple[PortForward, ...]
) -> MigrationRequest:
    layout = DestinationLayout(
        disk_paths=(("vda", disk), ("vdb", config)),
        vnc_listen=host.console_address,
        console_log_path=console_log_path(instance=instance, disk_path=disk),
        port_forwards=forwards,
    )
    return MigrationRequest(
        name=instance.domain_name,
        layout=layout,
        migration_address=host.migration_address,
        copied_disks=("vda",),
        bandwidth_mib_sec=settings.MIGRATION_MAX_MIB_SEC,
        timeout_seconds=settings.MIGRATION_TIMEOUT_SECONDS,
    )


def _prepare(move: _Move, instance: Instance, *, new: HypervisorDriver) -> MigrationRequest:
    """The instance's disk, config drive and ports on the target; how its domain is to move there."""
    disk = _fresh_overlay(new, move.target, instance, move.stack)
    instance.host = move.target  # where the drive goes; the row follows once the guest has arrived
    config = upload_config_drive(driver=new, instance=instance, peers=move.instances)
    return _request(
        instance, move.target, disk=disk, config=config.path, forwards=_reserve_ports(instance, move.target)
    )


def _reserve_ports(instance: Instance, target: Host) -> tuple[PortForward, ...]:
    """New ports on the target, reserved (the rows point there) before the instance moves: new even where
    the numbers would be free there, as the source's QEMU holds the old ones while both guests run."""
    with transaction.atomic():
        Host.objects.select_for_update().get(pk=target.pk)  # the lock launches take to reserve ports
        ports = list(PublishedPort.objects.filter(instance=instance).order_by("pk"))
        for port, number in zip(ports, allocate_ports(target, len(ports)) if ports else [], strict=True):
            port.host, port.host_port = target, number
            port.save(update_fields=["host", "host_port"])
    address = bind_address(target)
    return tuple(PortForward(host_port=p.host_port, guest_port=p.guest_port, host_address=address) for p in ports)


def _succeed(move: _Move) -> None:
    ids = [i.pk for i in move.instances]

    def arrive(locked: Stack) -> None:
        StackNetwork.objects.filter(stack=locked).update(host=move.target)
        _give_back(move.source.pk, _amounts(move.instances))  # the source's claim ends with the move
        forget_readiness(instance_ids=ids)
        queue_endpoints_watch(stack_id=locked.pk)

    done = f"moved to {move.target.name}"
    fields: dict[str, object] = {"moving_from": None}
    stack_jobs.settle(
        move.stack, busy=Status.MIGRATING, status=Status.RUNNING, message=done, fields=fields, before_save=arrive
    )
    _clear(move.source, move, move.instances)
    endpoints = [p.url for p in PublishedPort.objects.filter(instance_id__in=ids).select_related("host").order_by("pk")]
    result = {"endpoints": endpoints, "moved": [i.name for i in move.instances]}
    operation_finished(move.operation_id, status=Operation.State.SUCCEEDED, detail=done, result=result)


def _fail(move: _Move, reason: str) -> None:
    stranded = _bring_back(move)
    home = [i for i in move.instances if i not in stranded]
    _clear(move.target, move, home)
    stranded_ports = set(PublishedPort.objects.filter(instance__in=stranded).values_list("pk", flat=True))

    def put_back(locked: Stack) -> None:
        for port_id, (host_id, number) in move.origin_ports.items():
            if port_id not in stranded_ports:
                PublishedPort.objects.filter(pk=port_id).update(host_id=host_id, host_port=number)
        Instance.objects.filter(pk__in=[i.pk for i in home]).update(host=move.source)
        _give_back(move.target.pk, _amounts(move.instances))

    detail = f"could not move to {move.target.name}: {reason}"
    if stranded:
        detail += f"; {', '.join(i.name for i in stranded)} could not come back from it"
    stack_jobs.settle(
        move.stack,
        busy=Status.MIGRATING,
        status=Status.ERROR if stranded else Status.RUNNING,
        message=detail,
        is_error=True,
        fields={"moving_from": None, "status_reason": detail if stranded else ""},
        before_save=put_back,
    )
    operation_finished(move.operation_id, status=Operation.State.FAILED, detail=detail)


def _bring_back(move: _Move) -> list[Instance]:
    """The tiers that had arrived, moved back to the source over fresh overlays there; those that could not."""
    if not move.arrived:
        return []
    source, address = move.source, bind_address(move.source)
    try:
        with driver_for(source) as old, driver_for(move.target) as new:
            requests = []
            for instance in move.arrived:
                config = old.find_volume(pool=source.storage_pool, name=instance.config_volume_name)
                forwards = tuple(
                    PortForward(host_port=move.origin_ports[p.pk][1], guest_port=p.guest_port, host_address=address)
                    for p in PublishedPort.objects.filter(instance=instance).order_by("pk")
                )
                disk = _fresh_overlay(old, source, instance, move.stack)
                requests.append(
                    _request(instance, source, disk=disk, config=config.path if config else "", forwards=forwards)
                )
            outcomes = new.migrate_domains(requests, target=old)
    except DriverError as exc:
        stack_event(move.stack, f"the tiers that had moved could not come back: {exc.message}", is_error=True)
        return list(move.arrived)
    stranded = []
    for instance in move.arrived:
        outcome = outcomes.get(instance.domain_name)
        if isinstance(outcome, DomainInfo):
            Instance.objects.filter(pk=instance.pk).update(host=source, vnc_port=outcome.vnc_port)
            stack_event(move.stack, f"{instance.name} moved back to {source.name}")
        else:
            stack_event(move.stack, f"{instance.name} could not move back to {source.name}", is_error=True)
            stranded.append(instance)
    return stranded


def _clear(host: Host, move: _Move, instances: list[Instance]) -> None:
    """The stack's domains, disks, console logs and network off ``host``; problems are said, not raised."""
    try:
        with driver_for(host) as driver:
            for instance in instances:
                if host.pk == move.target.pk:  # a domain the target made but never ran
                    driver.destroy_domain(name=instance.domain_name)
                driver.delete_volume(pool=host.storage_pool, name=instance.volume_name)
                driver.delete_volume(pool=host.storage_pool, name=instance.config_volume_name)
                delete_console_log(driver=driver, host=host, instance=instance)
            if len(instances) == len(move.instances):
                driver.delete_network(name=move.stack.network.name)
    except DriverError as exc:
        logger.warning("stack %s: clearing %s after a move: %s", move.stack.pk, host.name, exc.detail or exc.message)
        stack_event(move.stack, f"could not clear {host.name} yet ({exc.message}); the reconciler will", is_error=True)

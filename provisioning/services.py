"""Writes for stacks: launch (claim quota, host and ports), build, destroy, expire leases.

``stack_launch`` and ``stack_destroy`` are called by the web UI and the API and return at
once; the slow parts (image download, upload, libvirt) run in django-q2 tasks that call
``stack_build`` and ``stack_teardown``.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from catalog.models import ApplianceVersion, CachedImage
from catalog.services import CatalogError, image_ensure_cached
from portal import audit, throttle
from portal.models import Project, Role
from portal.scoping import User, require_role
from provisioning.drivers import (
    DomainInfo,
    DomainSpec,
    DomainTags,
    DriverError,
    HypervisorDriver,
    PortForward,
    PortUnavailable,
    VolumeInfo,
)
from provisioning.drivers.domain_xml import base_volume_name, overlay_volume_name
from provisioning.hosts import driver_for
from provisioning.models import (
    Host,
    HostImage,
    Instance,
    PublishedPort,
    Stack,
    StackEvent,
    Status,
)
from provisioning.placement import NoCapacity, allocate_port, choose_host, host_loads
from provisioning.progress import announce_stack_change
from provisioning.selectors import project_usage

logger = logging.getLogger(__name__)

STACK_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DELETABLE_STATUSES = (Status.PENDING, Status.BUILDING, Status.RUNNING, Status.ERROR)
STUCK_TEARDOWN_AFTER = timedelta(minutes=10)
PORT_ATTEMPTS = 3
# An upload whose worker has not reported for this long is taken over by the next build.
STALE_UPLOAD_AFTER = timedelta(minutes=10)
MIN_LEASE_SECONDS = 60


class LaunchError(Exception):
    """The stack cannot be launched; nothing was created. ``code`` tells the API which status to send."""

    code = "invalid"


class QuotaExceeded(LaunchError):
    code = "quota_exceeded"


class CapacityExhausted(LaunchError):
    code = "no_capacity"


class StackStateError(Exception):
    """The stack is not in a state that allows the operation."""


def stack_event(stack: Stack, message: str, *, is_error: bool = False) -> None:
    """Record a line of progress; every status change comes with one, so watchers are nudged here."""
    StackEvent.objects.create(stack=stack, message=message[:500], is_error=is_error)
    announce_stack_change(stack.pk)


# --- launch -----------------------------------------------------------------------------------


def stack_launch(
    *,
    user: User,
    project: Project,
    name: str,
    appliance_version: ApplianceVersion,
    lease_seconds: int | None = None,
) -> Stack:
    """Claim quota, a host and a port for a one-tier stack, and queue its build."""
    require_role(user, project, Role.MEMBER)
    if not STACK_NAME_RE.match(name):
        raise LaunchError(
            "name must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
        )
    lease = lease_seconds if lease_seconds is not None else settings.DEFAULT_LEASE_SECONDS
    _check_lease(lease)
    vcpus, memory_mib = appliance_version.min_vcpus, appliance_version.min_ram_mib
    role = appliance_version.appliance.role or "main"

    with transaction.atomic():
        # Lock order everywhere: project, then hosts by id. Parallel launches queue here.
        locked_project = Project.objects.select_for_update().get(pk=project.pk)
        _check_quota(locked_project, instances=1, vcpus=vcpus, memory_mib=memory_mib)
        hosts = list(Host.objects.select_for_update().filter(enabled=True, healthy=True).order_by("pk"))
        try:
            host = choose_host(host_loads(hosts), vcpus=vcpus, memory_mib=memory_mib).host
            ports = _plan_published_ports(host, appliance_version)
        except NoCapacity as exc:
            raise CapacityExhausted(str(exc)) from None
        stack = Stack.objects.create(
            project=locked_project,
            name=name,
            created_by=user,
            expires_at=timezone.now() + timedelta(seconds=lease),
        )
        instance = Instance.objects.create(
            stack=stack,
            name=f"{name}-{role}",
            role=role,
            appliance_version=appliance_version,
            host=host,
            vcpus=vcpus,
            memory_mib=memory_mib,
        )
        instance.domain_name = f"{settings.DEPLOYMENT_NAME}-i{instance.pk}-{role}"[:63]
        instance.volume_name = overlay_volume_name(_tags(instance))
        instance.save(update_fields=["domain_name", "volume_name"])
        PublishedPort.objects.bulk_create(
            PublishedPort(instance=instance, host=host, host_port=host_port, guest_port=guest_port)
            for host_port, guest_port in ports
        )
        stack_event(stack, f"queued: {appliance_version} on host {host.name}")
        audit.record(
            actor=user,
            action="stack.launch",
            target=stack,
            project=locked_project,
            appliance_version=appliance_version.pk,
            lease_seconds=lease,
        )
        transaction.on_commit(
            lambda: async_task("provisioning.tasks.build_stack", stack.pk, task_name=f"build-stack-{stack.pk}")
        )
    return stack


def _check_lease(seconds: int) -> None:
    if not MIN_LEASE_SECONDS <= seconds <= settings.MAX_LEASE_SECONDS:
        raise LaunchError(f"lease must be between {MIN_LEASE_SECONDS} and {settings.MAX_LEASE_SECONDS} seconds")


def _check_quota(project: Project, *, instances: int, vcpus: int, memory_mib: int) -> None:
    wanted = {"instances": instances, "vCPUs": vcpus, "MiB of memory": memory_mib}
    for line in project_usage(project):
        if line.used + wanted[line.what] > line.limit:
            raise QuotaExceeded(
                f"quota exceeded: project '{project.name}' may hold {line.limit} {line.what}, "
                f"{line.used} are in use and this stack needs {wanted[line.what]}"
            )


def _plan_published_ports(host: Host, version: ApplianceVersion) -> list[tuple[int, int]]:
    """(host port, guest port) pairs to reserve for an instance of ``version`` on ``host``."""
    if not version.service_port:
        return []
    host_port = allocate_port(host)
    return [(host_port, version.service_port)]


def _tags(instance: Instance) -> DomainTags:
    return DomainTags(project_id=instance.stack.project_id, stack_id=instance.stack_id, instance_id=instance.pk)


# --- build (worker) ---------------------------------------------------------------------------


def stack_build(*, stack: Stack) -> Stack:
    """Bring every instance of a pending stack to running; on failure clean up and say why."""
    started = Stack.objects.filter(pk=stack.pk, status=Status.PENDING).update(status=Status.BUILDING)
    if not started:
        stack.refresh_from_db()
        return stack  # deleted or already handled while queued
    stack_event(stack, "building")
    instances = list(stack.instances.select_related("host", "appliance_version__image", "stack"))
    try:
        for instance in instances:
            _build_instance(stack=stack, instance=instance)
    except StackStateError:
        # Deleted while building: not a failure. The teardown owns the stack now; this only
        # removes what the build made after the teardown looked.
        _remove_instances(instances)
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


def _build_instance(*, stack: Stack, instance: Instance) -> None:
    version = instance.appliance_version
    Instance.objects.filter(pk=instance.pk).update(status=Status.BUILDING)
    if version.image.status != version.image.Status.READY:
        stack_event(stack, f"downloading image for {version} ({version.size_bytes // (1024 * 1024)} MiB)")
    # Download progress lives on the cached image; nudging watchers lets the page redraw the bar.
    image = image_ensure_cached(version=version, progress=lambda _done, _total: announce_stack_change(stack.pk))
    host = instance.host
    with driver_for(host) as driver:
        base = _ensure_base_volume(driver=driver, host=host, image=image, stack=stack)
        # Held across create-and-start so a concurrent delete either sees the domain or stops us first.
        with transaction.atomic():
            locked = Stack.objects.select_for_update().get(pk=stack.pk)
            if locked.status != Status.BUILDING:
                raise StackStateError(f"stack became {locked.status} while building")
            overlay = driver.create_overlay(pool=host.storage_pool, name=instance.volume_name, backing=base)
            try:
                info = _start_domain(driver=driver, host=host, instance=instance, disk_path=overlay.path, stack=stack)
            except DriverError:
                driver.delete_volume(pool=host.storage_pool, name=instance.volume_name)
                raise
            Instance.objects.filter(pk=instance.pk).update(status=Status.RUNNING, vnc_port=info.vnc_port)
    stack_event(stack, f"{instance.name} started on {host.name}")


def _start_domain(
    *, driver: HypervisorDriver, host: Host, instance: Instance, disk_path: str, stack: Stack
) -> DomainInfo:
    """Define and start the domain; if a published port was grabbed by someone else meanwhile, move it."""
    attempts_left = PORT_ATTEMPTS
    while True:
        try:
            return driver.define_and_start(_domain_spec(host=host, instance=instance, disk_path=disk_path))
        except PortUnavailable:
            attempts_left -= 1
            if not attempts_left:
                raise
            _move_published_ports(instance=instance, host=host, stack=stack)


def _domain_spec(*, host: Host, instance: Instance, disk_path: str) -> DomainSpec:
    return DomainSpec(
        name=instance.domain_name,
        domain_type=host.domain_type,
        vcpus=instance.vcpus,
        memory_mib=instance.memory_mib,
        disk_path=disk_path,
        tags=_tags(instance),
        port_forwards=tuple(
            PortForward(host_port=p.host_port, guest_port=p.guest_port, host_address=host.public_address)
            for p in instance.published_ports.all()
        ),
    )


def _move_published_ports(*, instance: Instance, host: Host, stack: Stack) -> None:
    Host.objects.select_for_update().get(pk=host.pk)  # the same lock launches take to reserve ports
    for published in instance.published_ports.all():
        old_port = published.host_port
        published.host_port = allocate_port(host)
        published.save(update_fields=["host_port"])
        stack_event(stack, f"port {old_port} on {host.name} is taken by another program; using {published.host_port}")


def _ensure_base_volume(*, driver: HypervisorDriver, host: Host, image: CachedImage, stack: Stack) -> VolumeInfo:
    """The image as a volume in the host's pool, uploaded once; later instances only overlay it.

    The HostImage row is the claim: whoever creates it (or takes over a stale one) uploads,
    the others wait. No transaction is held during the upload, which can take minutes.
    """
    name = base_volume_name(image.sha256, "qcow2")
    while True:
        copy, created = HostImage.objects.get_or_create(host=host, image=image, defaults={"volume_name": name})
        if created:
            # A volume already there was left by an earlier installation with the same name (sha256).
            existing = driver.find_volume(pool=host.storage_pool, name=name)
            if existing is not None:
                _mark_uploaded(copy, existing)
                return existing
            return _upload_base_volume(driver=driver, host=host, image=image, copy=copy, stack=stack)
        if copy.state == HostImage.State.READY:
            existing = driver.find_volume(pool=host.storage_pool, name=name)
            if existing is not None:
                return existing
        elif copy.updated_at > timezone.now() - STALE_UPLOAD_AFTER:
            time.sleep(0.5)  # another build is uploading it
            continue
        # Ready but gone from the pool, or an upload whose worker stopped reporting: take it over.
        taken = HostImage.objects.filter(pk=copy.pk, updated_at=copy.updated_at).update(
            state=HostImage.State.UPLOADING, bytes_done=0, updated_at=timezone.now()
        )
        if taken:
            driver.delete_volume(pool=host.storage_pool, name=name)  # a partial upload must not be reused
            return _upload_base_volume(driver=driver, host=host, image=image, copy=copy, stack=stack)


def _upload_base_volume(
    *, driver: HypervisorDriver, host: Host, image: CachedImage, copy: HostImage, stack: Stack
) -> VolumeInfo:
    size_mib = image.size_bytes // (1024 * 1024)
    stack_event(stack, f"uploading base image to {host.name} ({size_mib} MiB)")
    quarters_told = [0]

    def record(done: int, total: int) -> None:
        HostImage.objects.filter(pk=copy.pk).update(bytes_done=done, bytes_total=total, updated_at=timezone.now())
        quarter = 4 * done // total if total else 4
        if 0 < quarter < 4 and quarter > quarters_told[0]:
            quarters_told[0] = quarter
            stack_event(stack, f"uploading base image to {host.name}: {25 * quarter}%")

    try:
        volume = driver.upload_volume(
            pool=host.storage_pool,
            name=copy.volume_name,
            source_path=image.path,
            disk_format="qcow2",
            capacity_bytes=image.virtual_size_bytes,
            progress=throttle.every(1.0, record),
        )
    except BaseException:
        copy.delete()  # release the claim so the next build tries again
        raise
    _mark_uploaded(copy, volume)
    return volume


def _mark_uploaded(copy: HostImage, volume: VolumeInfo) -> None:
    HostImage.objects.filter(pk=copy.pk).update(
        state=HostImage.State.READY,
        volume_path=volume.path,
        capacity_bytes=volume.capacity_bytes,
        uploaded_at=timezone.now(),
        updated_at=timezone.now(),
    )


def _fail_stack(stack: Stack, instances: list[Instance], reason: str) -> None:
    logger.warning("stack %s failed: %s", stack.pk, reason)
    cleanup_problems = _remove_instances(instances)
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


def _remove_instances(instances: list[Instance]) -> list[str]:
    """Destroy domains and delete overlay volumes; return what could not be removed."""
    problems: list[str] = []
    for instance in instances:
        if instance.host is None:
            continue
        try:
            with driver_for(instance.host) as driver:
                driver.destroy_domain(name=instance.domain_name)
                driver.delete_volume(pool=instance.host.storage_pool, name=instance.volume_name)
        except DriverError as exc:
            problems.append(f"{instance.name}: {exc.message}")
    return problems


# --- destroy ----------------------------------------------------------------------------------


def stack_renew_lease(*, user: User, stack: Stack, lease_seconds: int) -> Stack:
    """Set the stack to expire ``lease_seconds`` from now (longer or shorter than before)."""
    require_role(user, stack.project, Role.MEMBER)
    _check_lease(lease_seconds)
    with transaction.atomic():
        locked = Stack.objects.select_for_update().get(pk=stack.pk)
        if locked.status not in DELETABLE_STATUSES:
            raise StackStateError(f"stack is {locked.status}")
        locked.expires_at = timezone.now() + timedelta(seconds=lease_seconds)
        locked.save(update_fields=["expires_at", "updated_at"])
        stack_event(locked, f"lease renewed until {locked.expires_at:%Y-%m-%d %H:%M:%S %Z}")
        audit.record(
            actor=user, action="stack.renew_lease", target=locked, project=locked.project, lease_seconds=lease_seconds
        )
    return locked


def stack_destroy(*, user: User | None, stack: Stack, reason: str = "deleted by user") -> Stack:
    """Mark the stack for deletion and queue the teardown (domains and volumes, data and all)."""
    if user is not None:
        require_role(user, stack.project, Role.MEMBER)
    with transaction.atomic():
        locked = Stack.objects.select_for_update().get(pk=stack.pk)
        if locked.status == Status.DELETING:
            return locked
        if locked.status not in DELETABLE_STATUSES:
            raise StackStateError(f"stack is {locked.status}")
        locked.status = Status.DELETING
        locked.status_reason = reason
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        stack_event(locked, f"deleting: {reason}")
        audit.record(actor=user, action="stack.destroy", target=locked, project=locked.project, reason=reason)
        transaction.on_commit(lambda: _queue_teardown(locked.pk))
    return locked


def _queue_teardown(stack_id: int) -> None:
    async_task("provisioning.tasks.teardown_stack", stack_id, task_name=f"teardown-stack-{stack_id}")


def stack_teardown(*, stack: Stack) -> Stack:
    with transaction.atomic():
        locked = Stack.objects.select_for_update().get(pk=stack.pk)
        if locked.status != Status.DELETING:
            return locked
        instances = list(locked.instances.select_related("host", "stack"))
        problems = _remove_instances(instances)
        if problems:
            reason = f"delete failed: {'; '.join(problems)}; delete again to retry"
            locked.status, locked.status_reason = Status.ERROR, reason
            locked.save(update_fields=["status", "status_reason", "updated_at"])
            stack_event(locked, reason, is_error=True)
            return locked
        Instance.objects.filter(stack=locked).update(status=Status.DELETED)
        PublishedPort.objects.filter(instance__stack=locked).delete()
        locked.status, locked.deleted_at = Status.DELETED, timezone.now()
        locked.save(update_fields=["status", "deleted_at", "updated_at"])
        stack_event(locked, "deleted: domains destroyed, disks removed")
    return locked


def leases_expire(*, now=None) -> int:
    """Queue the teardown of every stack whose lease has run out; return how many.

    Also re-queues teardowns that have sat in "deleting" too long (a worker died or the
    database refused a write), so an expired stack can never linger with its VM running.
    """
    now = now or timezone.now()
    count = 0
    for stack in Stack.objects.filter(expires_at__lte=now, status__in=DELETABLE_STATUSES):
        try:
            stack_destroy(user=None, stack=stack, reason="lease expired")
            count += 1
        except StackStateError:
            continue
    stuck = Stack.objects.filter(status=Status.DELETING, updated_at__lte=now - STUCK_TEARDOWN_AFTER)
    for stack_id in list(stuck.values_list("pk", flat=True)):
        # Touching updated_at spaces the retries out instead of queueing one every minute.
        Stack.objects.filter(pk=stack_id).update(updated_at=now)
        stack_event(Stack(pk=stack_id), "teardown is taking too long; trying again")
        _queue_teardown(stack_id)
    return count

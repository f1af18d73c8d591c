"""django-q2 entry points for provisioning: load the row, call the service."""

from __future__ import annotations

from catalog.models import ApplianceVersion
from provisioning.consoles.tickets import console_tickets_prune
from provisioning.models import Host, Stack
from provisioning.services import (
    build,
    endpoint_probe,
    hosts,
    idle,
    image_waits,
    lifecycle,
    power,
    reconcile,
    schedules,
    shelving,
    snapshots,
    watchdog,
)


def build_stack(stack_id: int) -> str:
    stack = Stack.objects.filter(pk=stack_id).first()
    if stack is None:
        return "stack no longer exists"
    return build.stack_build(stack=stack).status


def download_image(version_id: int) -> str:
    version = ApplianceVersion.objects.select_related("appliance", "image").filter(pk=version_id).first()
    if version is None:
        return "version no longer exists"
    return image_waits.image_download_for_builds(version=version).status


def teardown_stack(stack_id: int) -> str:
    stack = Stack.objects.filter(pk=stack_id).first()
    if stack is None:
        return "stack no longer exists"
    return lifecycle.stack_teardown(stack=stack).status


def expire_leases() -> int:
    return lifecycle.leases_expire()


def refresh_hosts() -> int:
    """Re-read every enabled host, so placement stops choosing one whose libvirtd went away."""
    enabled = list(Host.objects.filter(enabled=True))
    for host in enabled:
        hosts.host_refresh(host=host)
    return sum(host.healthy for host in enabled)


def reconcile_hosts() -> int:
    """Remove leftovers on every enabled, healthy host; return how many were removed."""
    return sum(
        len(reconcile.reconcile_host(host=host).removed) for host in Host.objects.filter(enabled=True, healthy=True)
    )


def watch_builds() -> int:
    """Fail builds whose worker stopped; queue again builds that never started."""
    return watchdog.stacks_watchdog()


def prune_console_tickets() -> int:
    """Delete console ticket rows a day after they were last of use (sessions stay in the audit log)."""
    return console_tickets_prune()


def power_stack(stack_id: int, action: str, instance_id: int | None = None) -> str:
    return power.power_job(stack_id=stack_id, action=action, instance_id=instance_id)


def shelve_stack(stack_id: int, memory: bool = True, reason: str = "") -> str:
    return shelving.shelve_job(stack_id=stack_id, memory=memory, reason=reason)


def unshelve_stack(
    stack_id: int, from_host: int | None = None, cidr: str = "", ports: list[list[int]] | None = None
) -> str:
    return shelving.unshelve_job(stack_id=stack_id, from_host=from_host, cidr=cidr, ports=ports)


def snapshot_stack(stack_id: int, snapshot_id: int) -> str:
    return snapshots.snapshot_job(stack_id=stack_id, snapshot_id=snapshot_id)


def revert_stack(stack_id: int, snapshot_id: int) -> str:
    return snapshots.revert_job(stack_id=stack_id, snapshot_id=snapshot_id)


def delete_snapshot(snapshot_id: int) -> str:
    return snapshots.snapshot_delete_job(snapshot_id=snapshot_id)


def apply_schedules() -> int:
    """Shelve and unshelve the stacks whose weekly schedule changed since the last minute."""
    return schedules.schedules_apply()


def sweep_idle_stacks() -> int:
    """Warn, then shelve, running stacks that stayed idle for their project's idle period."""
    return idle.idle_sweep()


def watch_stack_endpoints(stack_id: int) -> int:
    """After a stack's guests started: probe its published ports until they answer (or a bound passes)."""
    return endpoint_probe.endpoints_watch_after_start(stack_id=stack_id)


def probe_endpoints() -> int:
    """Probe every published port of a running guest that has not answered yet; how many now answer."""
    return endpoint_probe.endpoints_sweep()

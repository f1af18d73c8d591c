"""django-q2 entry points for provisioning: load the row, call the service."""

from __future__ import annotations

from provisioning import services
from provisioning.models import Stack


def build_stack(stack_id: int) -> str:
    stack = Stack.objects.filter(pk=stack_id).first()
    if stack is None:
        return "stack no longer exists"
    return services.stack_build(stack=stack).status


def teardown_stack(stack_id: int) -> str:
    stack = Stack.objects.filter(pk=stack_id).first()
    if stack is None:
        return "stack no longer exists"
    return services.stack_teardown(stack=stack).status


def expire_leases() -> int:
    return services.leases_expire()


def refresh_hosts() -> int:
    """Re-read every enabled host, so placement stops choosing one whose libvirtd went away."""
    from provisioning.hosts import host_refresh
    from provisioning.models import Host

    hosts = list(Host.objects.filter(enabled=True))
    for host in hosts:
        host_refresh(host=host)
    return sum(host.healthy for host in hosts)


def reconcile_hosts() -> int:
    """Remove leftovers on every enabled, healthy host; return how many were removed."""
    from provisioning.models import Host
    from provisioning.reconciler import reconcile_host

    return sum(len(reconcile_host(host=host).removed) for host in Host.objects.filter(enabled=True, healthy=True))

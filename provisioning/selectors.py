"""Reads for stacks and hosts, always narrowed to what the caller may see."""

from __future__ import annotations

from typing import TypedDict

from django.db.models import Prefetch

from portal.scoping import User
from provisioning.models import Instance, PublishedPort, Stack, StackQuerySet
from provisioning.placement import host_loads


def _stacks_with_details() -> StackQuerySet:
    ports = PublishedPort.objects.select_related("host")
    instances = Instance.objects.select_related(
        "host", "appliance_version__appliance", "appliance_version__image", "appliance_version__delivery"
    ).prefetch_related(Prefetch("published_ports", queryset=ports))
    return Stack.objects.select_related("project", "network__host").prefetch_related(
        Prefetch("instances", queryset=instances)
    )


def stacks_visible_to(user: User) -> StackQuerySet:
    return _stacks_with_details().visible_to(user)


def stack_visible_to(user: User, *, stack_id: int) -> Stack:
    """One of the user's stacks with its instances and ports; ``errors.NotFound`` for any other id."""
    return _stacks_with_details().get_visible(user, pk=stack_id)


class Endpoint(TypedDict):
    role: str
    guest_port: int
    url: str


def stack_endpoints(stack: Stack) -> list[Endpoint]:
    """Where the stack's services can be reached, one entry per published port."""
    return [
        {"role": instance.role, "guest_port": port.guest_port, "url": port.url}
        for instance in stack.instances.all()
        for port in instance.published_ports.all()
    ]


class HostCapacity(TypedDict):
    name: str
    uri: str
    healthy: bool
    enabled: bool
    draining: bool
    instances: int
    vcpus_used: int
    vcpus_capacity: int
    memory_used_mib: int
    memory_capacity_mib: int
    disk_used_gib: int
    disk_capacity_gib: int | None  # None: the storage pool's size is not known


def host_capacity() -> list[HostCapacity]:
    """Per host, what placement has handed out against what it may hand out (operators' view), in one query."""
    return [
        {
            "name": load.host.name,
            "uri": load.host.uri,
            "healthy": load.host.healthy,
            "enabled": load.host.enabled,
            "draining": load.host.draining,
            "instances": load.instances,
            "vcpus_used": load.vcpus,
            "vcpus_capacity": load.vcpu_capacity,
            "memory_used_mib": load.memory_mib,
            "memory_capacity_mib": load.memory_capacity_mib,
            "disk_used_gib": load.disk_gib,
            "disk_capacity_gib": load.disk_capacity_gib,
        }
        for load in host_loads()
    ]

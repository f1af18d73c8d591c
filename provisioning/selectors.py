"""Reads for stacks and hosts, always narrowed to what the caller may see."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from portal.scoping import scope_to_user
from provisioning.models import Instance, PublishedPort, Stack


def stacks_visible_to(user) -> QuerySet[Stack]:
    ports = PublishedPort.objects.select_related("host")
    instances = Instance.objects.select_related("host", "appliance_version__appliance").prefetch_related(
        Prefetch("published_ports", queryset=ports)
    )
    return scope_to_user(
        Stack.objects.select_related("project").prefetch_related(Prefetch("instances", queryset=instances)),
        user,
    )


def stack_endpoints(stack: Stack) -> list[dict]:
    """Where the stack's services can be reached, one entry per published port."""
    return [
        {"role": instance.role, "guest_port": port.guest_port, "url": port.url}
        for instance in stack.instances.all()
        for port in instance.published_ports.all()
    ]

"""Reads for stacks and hosts, always narrowed to what the caller may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, QuerySet, Sum

from portal.models import Project, Role
from portal.scoping import User, projects_for, scope_to_user
from provisioning.models import ACTIVE_STATUSES, Instance, PublishedPort, Stack


def stacks_visible_to(user: User) -> QuerySet[Stack]:
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


@dataclass(frozen=True)
class QuotaLine:
    what: str
    used: int
    limit: int


def project_usage(project: Project) -> list[QuotaLine]:
    """What the project holds against each quota. Failed stacks hold theirs until they are deleted."""
    usage = Instance.objects.filter(stack__project=project, status__in=ACTIVE_STATUSES).aggregate(
        count=Count("id"), vcpus=Sum("vcpus"), memory=Sum("memory_mib")
    )
    return [
        QuotaLine("instances", usage["count"] or 0, project.max_instances),
        QuotaLine("vCPUs", usage["vcpus"] or 0, project.max_vcpus),
        QuotaLine("MiB of memory", usage["memory"] or 0, project.max_memory_mib),
    ]


def quota_overview(user: User) -> list[tuple[Project, list[QuotaLine]]]:
    return [(project, project_usage(project)) for project in projects_for(user, min_role=Role.VIEWER)]


def host_capacity() -> list[dict]:
    """Per host, what placement has handed out against what it may hand out (operators' view)."""
    from provisioning.models import Host
    from provisioning.placement import host_loads

    return [
        {
            "name": load.host.name,
            "uri": load.host.uri,
            "healthy": load.host.healthy,
            "enabled": load.host.enabled,
            "instances": load.instances,
            "vcpus_used": load.vcpus,
            "vcpus_capacity": load.host.vcpu_capacity,
            "memory_used_mib": load.memory_mib,
            "memory_capacity_mib": load.host.memory_capacity_mib,
        }
        for load in host_loads(list(Host.objects.order_by("name")))
    ]

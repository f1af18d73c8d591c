"""Launching a stack: claim quota, a host and ports in one transaction, then queue the build.

``stack_launch`` is called by the web UI and the API and returns at once; the slow part runs in a
django-q2 task (``provisioning.tasks.build_stack``) that calls ``build.stack_build``.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from catalog.models import ApplianceVersion
from portal import audit, errors
from portal.models import Project, Role
from portal.scoping import Account, User, require_role
from provisioning import naming
from provisioning.demand import InstanceDemand, StackDemand
from provisioning.drivers import DomainTags
from provisioning.models import Host, Instance, PublishedPort, Stack
from provisioning.placement import allocate_port, claim_host
from provisioning.quotas import check_stack_quota
from provisioning.services.events import stack_event

STACK_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MIN_LEASE_SECONDS = 60


def check_lease(seconds: int) -> None:
    if not MIN_LEASE_SECONDS <= seconds <= settings.MAX_LEASE_SECONDS:
        raise errors.Invalid.for_field(
            "lease", f"lease must be between {MIN_LEASE_SECONDS} and {settings.MAX_LEASE_SECONDS} seconds"
        )


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
    assert isinstance(user, Account), "require_role lets no anonymous caller through"
    if not STACK_NAME_RE.match(name):
        raise errors.Invalid.for_field(
            "name", "name must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
        )
    lease = lease_seconds if lease_seconds is not None else settings.DEFAULT_LEASE_SECONDS
    check_lease(lease)
    vcpus, memory_mib = appliance_version.min_vcpus, appliance_version.min_ram_mib
    role = appliance_version.appliance.role or "main"

    with transaction.atomic():
        # Lock order everywhere: project, then hosts by id. Parallel launches queue here.
        locked_project = Project.objects.select_for_update().get(pk=project.pk)
        demand = StackDemand(
            instances=(InstanceDemand(tier=role, vcpus=vcpus, memory_mib=memory_mib, disk_gib=0),), lease_seconds=lease
        )
        check_stack_quota(locked_project, demand)
        host = claim_host(demand)
        ports = _plan_published_ports(host, appliance_version)
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
        instance.domain_name = naming.domain_name(instance_id=instance.pk, role=role)
        instance.volume_name = naming.overlay_volume_name(instance_tags(instance))
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


def instance_tags(instance: Instance) -> DomainTags:
    return naming.instance_tags(
        project_id=instance.stack.project_id, stack_id=instance.stack_id, instance_id=instance.pk
    )


def _plan_published_ports(host: Host, version: ApplianceVersion) -> list[tuple[int, int]]:
    """(host port, guest port) pairs to reserve for an instance of ``version`` on ``host``."""
    if not version.service_port:
        return []
    host_port = allocate_port(host)
    return [(host_port, version.service_port)]

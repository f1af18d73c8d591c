"""Launching a stack: claim quota, a host, a subnet and ports in one transaction, then queue the build.

A stack comes from a template (``stack_launch_template``) or from one appliance
(``stack_launch``, a one-tier template made on the fly); both take the same path. The calls return
at once; the slow part runs in a django-q2 task (``provisioning.tasks.build_stack``) that calls
``build.stack_build``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from catalog.models import ApplianceVersion
from portal import audit, errors
from portal.lease_bounds import out_of_lease_bounds, within_lease_bounds
from portal.models import Project, Role
from portal.scoping import Account, User, require_role
from portal.task_queues import Queue, enqueue
from provisioning import naming, qos
from provisioning.drivers import DomainTags
from provisioning.models import Host, Instance, PublishedPort, Stack, StackNetwork, StackTemplate, Status
from provisioning.name_rules import STACK_NAME, TIER_NAME
from provisioning.placement import allocate_port, claim_host
from provisioning.quotas import check_stack_quota
from provisioning.services.events import stack_event
from provisioning.services.plans import StackPlan, in_project_catalog, plan_stack, single_tier_document
from provisioning.subnets import allocate_subnet, guest_address
from provisioning.templates import TemplateDocument


def check_lease(seconds: int) -> None:
    if not within_lease_bounds(seconds):
        raise errors.Invalid.for_field("lease", out_of_lease_bounds("lease"))


def stack_launch(
    *,
    user: User,
    project: Project,
    name: str,
    appliance_version: ApplianceVersion,
    lease_seconds: int | None = None,
) -> Stack:
    """Launch a one-tier stack of ``appliance_version``, its service port published."""
    require_role(user, project, Role.MEMBER)
    if not in_project_catalog(appliance_version, project):
        raise errors.Invalid.for_field("appliance", "no such appliance in this project's catalog")
    document = single_tier_document(appliance_version)
    # The tier is named after the role the appliance's feed gives it. Feeds are checked on import, but
    # a row stored before that may hold any text, and a stack whose tier is no tier name cannot be shown.
    tier = document.tiers[0].name
    if not TIER_NAME.pattern.fullmatch(tier):
        raise errors.Invalid.for_field(
            "appliance",
            f"appliance '{appliance_version.appliance.identifier}' cannot be launched: its feed gives it the "
            f"role '{tier[:40]}', and a tier name must be {TIER_NAME.rule}",
        )
    return _launch(
        user=user,
        project=project,
        name=name,
        document=document,
        template=None,
        lease_seconds=lease_seconds,
    )


def stack_launch_template(
    *, user: User, project: Project, name: str, template: StackTemplate, lease_seconds: int | None = None
) -> Stack:
    """Launch every tier of ``template`` (shared, or the project's own) as one stack."""
    require_role(user, project, Role.MEMBER)
    if template.project_id not in (None, project.pk):
        raise errors.Invalid.for_field("template", "no such template in this project")
    return _launch(
        user=user,
        project=project,
        name=name,
        document=TemplateDocument.from_json(template.document),
        template=template,
        lease_seconds=lease_seconds,
    )


def _launch(
    *,
    user: User,
    project: Project,
    name: str,
    document: TemplateDocument,
    template: StackTemplate | None,
    lease_seconds: int | None,
) -> Stack:
    require_role(user, project, Role.MEMBER)
    assert isinstance(user, Account), "require_role lets no anonymous caller through"
    STACK_NAME.check(name)
    lease = lease_seconds if lease_seconds is not None else project.run_lease_seconds
    check_lease(lease)
    plan = plan_stack(user=user, project=project, name=name, document=document)
    demand = plan.demand(lease_seconds=lease)
    # What each tier's flavor limits, kept by its instances whatever becomes of the flavor.
    kept = qos.tier_qos(project_id=project.pk, flavors={tier.name: tier.flavor for tier in document.tiers})

    with transaction.atomic():
        # Parallel launches of one project queue on its row; launches of different projects only
        # meet on the host they both claim.
        locked_project = Project.objects.select_for_update().get(pk=project.pk)
        # Checked under the project's lock, so two launches cannot both take a name.
        if Stack.objects.filter(project=locked_project, name=name).exclude(status=Status.DELETED).exists():
            raise errors.Invalid.for_field(
                "name", f"project '{locked_project.name}' already has a stack called '{name}'"
            )
        check_stack_quota(locked_project, demand)
        host = claim_host(demand, dedicated_cpus=_dedicated_vcpus(plan, kept))
        stack = Stack.objects.create(
            project=locked_project,
            name=name,
            template=template,
            document=document.as_json(),
            created_by=user,
            expires_at=timezone.now() + timedelta(seconds=lease),
        )
        _create_network_and_instances(stack=stack, host=host, plan=plan, kept=kept)
        tiers = ", ".join(f"{item.tier} ({item.version})" for item in plan.instances)
        stack_event(stack, f"queued: {tiers} on host {host.name}", actor=user)
        audit.record(
            actor=user,
            action="stack.launch",
            target=stack,
            project=locked_project,
            template=template.pk if template else None,
            appliance_versions=sorted({item.version.pk for item in plan.instances}),
            lease_seconds=lease,
        )
        transaction.on_commit(
            lambda: enqueue(
                "provisioning.tasks.build_stack", stack.pk, queue=Queue.BUILDS, task_name=f"build-stack-{stack.pk}"
            )
        )
    return stack


def _dedicated_vcpus(plan: StackPlan, kept: dict[str, dict[str, int | bool]]) -> int:
    return sum(item.vcpus for item in plan.instances if kept[item.tier].get("dedicated_cpus"))


def _create_network_and_instances(
    *, stack: Stack, host: Host, plan: StackPlan, kept: dict[str, dict[str, int | bool]]
) -> None:
    subnet = allocate_subnet(host)
    StackNetwork.objects.create(
        stack=stack,
        host=host,
        name=naming.network_name(project_id=stack.project_id, stack_id=stack.pk),
        cidr=str(subnet),
    )
    for index, item in enumerate(plan.instances):
        instance = Instance.objects.create(
            stack=stack,
            name=item.name,
            role=item.tier,
            appliance_version=item.version,
            host=host,
            vcpus=item.vcpus,
            memory_mib=item.memory_mib,
            disk_gib=item.disk_gib,
            address=guest_address(subnet, index),
            qos=kept[item.tier],
            # Under the host's row lock, which the claim holds: no other launch can take these CPUs.
            pinned_cpus=qos.cpu_list(qos.take_dedicated_cpus(host, item.vcpus))
            if kept[item.tier].get("dedicated_cpus")
            else "",
        )
        tags = instance_tags(instance)
        instance.domain_name = naming.domain_name(instance_id=instance.pk, role=item.tier)
        instance.volume_name = naming.overlay_volume_name(tags)
        instance.config_volume_name = naming.config_drive_volume_name(tags)
        instance.mac_address = naming.mac_address(instance.pk)
        instance.save(update_fields=["domain_name", "volume_name", "config_volume_name", "mac_address"])
        for guest_port in item.publish:  # one by one: each reservation is seen by the next allocation
            PublishedPort.objects.create(
                instance=instance, host=host, host_port=allocate_port(host), guest_port=guest_port
            )


def instance_tags(instance: Instance) -> DomainTags:
    return naming.instance_tags(
        project_id=instance.stack.project_id, stack_id=instance.stack_id, instance_id=instance.pk
    )

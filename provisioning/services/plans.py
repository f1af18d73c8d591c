"""From a template document to the instances a launch will make: appliances, sizes, names.

Everything a document names is looked up in the target project's view of the catalog (its own
feeds and the shared ones, and only those the caller may see), so no tenant can launch another
project's private appliance by naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NoReturn

from django.db.models import F, Q

from catalog.models import Appliance, ApplianceVersion
from catalog.selectors import appliance_version_for_launch
from portal import errors
from portal.models import Project
from portal.scoping import User
from provisioning.demand import GIB, InstanceDemand, StackDemand
from provisioning.models import Flavor
from provisioning.services.image_waits import image_download_queue
from provisioning.templates import TemplateDocument, Tier

MAX_INSTANCE_NAME = 63


@dataclass(frozen=True)
class InstancePlan:
    tier: str
    name: str
    version: ApplianceVersion
    vcpus: int
    memory_mib: int
    disk_gib: int
    publish: tuple[int, ...]


@dataclass(frozen=True)
class StackPlan:
    document: TemplateDocument
    instances: tuple[InstancePlan, ...]

    def demand(self, *, lease_seconds: int) -> StackDemand:
        return StackDemand(
            instances=tuple(
                InstanceDemand(
                    tier=item.tier,
                    vcpus=item.vcpus,
                    memory_mib=item.memory_mib,
                    disk_gib=item.disk_gib,
                    arch=item.version.arch,
                )
                for item in self.instances
            ),
            lease_seconds=lease_seconds,
        )


def single_tier_document(version: ApplianceVersion) -> TemplateDocument:
    """The one-tier stack a launch of a bare appliance makes: its service port published."""
    tier = Tier(
        name=version.appliance.role or "main",
        appliance=version.appliance.identifier,
        version=version.version,
        publish=(version.service_port,) if version.service_port else (),
    )
    return TemplateDocument(tiers=(tier,))


def in_project_catalog(version: ApplianceVersion, project: Project) -> bool:
    return version.appliance.feed.project_id in (None, project.pk)


def plan_stack(*, user: User, project: Project, name: str, document: TemplateDocument) -> StackPlan:
    instances: list[InstancePlan] = []
    unsized: dict[int, ApplianceVersion] = {}
    for index, tier in enumerate(document.tiers):
        path = f"tiers[{index}]"
        version = _version(user=user, project=project, tier=tier, path=path)
        vcpus, memory_mib, disk_gib = _size(project=project, tier=tier, version=version, path=path)
        if not disk_gib:
            unsized[version.pk] = version
        for ordinal in range(1, tier.count + 1):
            instance_name = f"{name}-{tier.name}" if tier.count == 1 else f"{name}-{tier.name}-{ordinal}"
            instances.append(
                InstancePlan(
                    tier=tier.name,
                    name=instance_name[:MAX_INSTANCE_NAME].rstrip("-"),
                    version=version,
                    vcpus=vcpus,
                    memory_mib=memory_mib,
                    disk_gib=disk_gib,
                    publish=tier.publish,
                )
            )
    if unsized:
        _refuse_unsized(list(unsized.values()))
    return StackPlan(document=document, instances=tuple(instances))


def _refuse_unsized(versions: list[ApplianceVersion]) -> NoReturn:
    """The claim must be the disk the build makes: with no size to claim, nothing is claimed yet.

    The images are downloaded and measured meanwhile, so launching again soon succeeds.
    """
    for version in versions:
        image_download_queue(version)
    names = ", ".join(f"{version.appliance.identifier} {version.version}" for version in versions)
    raise errors.WrongState(
        f"the disk size of {names} is not known yet: the feed does not declare it (vmc:virtualsize), so the "
        "image is being downloaded and measured first. Launch again once the image is ready, or give the "
        "tier a disk size."
    )


def _version(*, user: User, project: Project, tier: Tier, path: str) -> ApplianceVersion:
    in_catalog = Appliance.objects.visible_to(user).filter(
        Q(feed__project=project) | Q(feed__project__isnull=True), identifier=tier.appliance
    )
    # The project's own feed wins over the shared catalog when both carry the identifier.
    appliance = in_catalog.order_by(F("feed__project").asc(nulls_last=True)).first()
    if appliance is None:
        raise errors.Invalid.for_field(
            f"{path}.appliance", f"no appliance '{tier.appliance}' in the catalog of project '{project.name}'"
        )
    try:
        return appliance_version_for_launch(user=user, appliance=appliance, version=tier.version)
    except errors.Invalid as exc:
        raise errors.Invalid.for_field(f"{path}.version", exc.detail) from None


def image_disk_gib(version: ApplianceVersion) -> int | None:
    """The smallest disk the version's image fits on, as far as a launch may know before claiming it.

    Declared by its feed, or measured when this version's own URL delivered the image; None while
    neither (never learned from someone else's copy of the same bytes).
    """
    known = version.known_virtual_bytes
    return math.ceil(known / GIB) if known else None


def _size(*, project: Project, tier: Tier, version: ApplianceVersion, path: str) -> tuple[int, int, int]:
    image_gib = image_disk_gib(version)
    vcpus, memory_mib, disk_gib = tier.vcpus, tier.memory_mib, tier.disk_gib
    if tier.flavor is not None:
        flavor = (
            Flavor.objects.filter(Q(project=project) | Q(project__isnull=True), name=tier.flavor)
            .order_by(F("project").asc(nulls_last=True))
            .first()
        )
        if flavor is None:
            raise errors.Invalid.for_field(f"{path}.flavor", f"no flavor '{tier.flavor}' for project '{project.name}'")
        vcpus, memory_mib, disk_gib = flavor.vcpus, flavor.memory_mib, flavor.disk_gib
    vcpus = vcpus or version.min_vcpus
    memory_mib = memory_mib or version.min_ram_mib
    disk_gib = disk_gib or image_gib or 0  # 0: unknown, refused by plan_stack
    for what, value, minimum in (
        ("vcpus", vcpus, version.min_vcpus),
        ("memory_mib", memory_mib, version.min_ram_mib),
        ("disk_gib", disk_gib, image_gib or 0),
    ):
        if value < minimum:
            field = f"{path}.{'flavor' if tier.flavor else what}"
            raise errors.Invalid.for_field(
                field, f"{version.appliance.identifier} needs at least {minimum} {what.replace('_', ' ')}"
            )
    return vcpus, memory_mib, disk_gib

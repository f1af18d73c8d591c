"""Whether a stack may be exported now, and what the export reserves: the stack settled, no other
export of it under way, the project under its count of exports under way, and the project's
``max_export_gib`` holding what this one needs besides what its exports already hold."""

from __future__ import annotations

import math

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from portal import errors
from portal.models import Project
from provisioning.models import Instance, Stack, Status
from provisioning.services import stack_jobs
from transfers.models import Export, JobStatus

GIB = 1024**3
# Stacks whose disks stay put while they are read: settled, and with disks on one host.
EXPORTABLE = (Status.RUNNING, Status.STOPPED, Status.SHELVED)
UNFINISHED = (JobStatus.PENDING, JobStatus.RUNNING)


def check_exportable(stack: Stack) -> None:
    if stack.status not in EXPORTABLE or stack.moving_from_id is not None:
        allowed = ", ".join(str(s) for s in EXPORTABLE)
        raise errors.WrongState(f"the stack is {stack.status}: it can be exported when it is {allowed}")


def live_instances(stack: Stack) -> list[Instance]:
    """The stack's live tiers in start order (what depends on nothing first)."""
    return [i for layer in stack_jobs.instance_layers(stack) for i in layer]


def export_bytes_needed(instance: Instance) -> int:
    """What an export reserves for the instance's disk: the disk the guest sees (its own size, or its
    image's when it asked for none), which no file made of it outgrows by more than its metadata."""
    version = instance.appliance_version
    image = version.image if version is not None else None
    image_bytes = image.virtual_size_bytes if image is not None else 0
    return max(instance.disk_gib * GIB, image_bytes)


def check_unfinished(project: Project, stack: Stack) -> None:
    unfinished = Export.objects.filter(project=project, status__in=UNFINISHED)
    if unfinished.filter(stack=stack).exists():
        raise errors.WrongState("an export of this stack is under way: wait until it is done")
    limit = settings.DOWNLOADS_PER_PROJECT
    if unfinished.count() >= limit:
        raise errors.WrongState(
            f"project '{project.name}' has {limit} export(s) under way, as many as it may: wait until one is done"
        )


def export_bytes_used(project: Project) -> int:
    """What the project's exports hold: finished files not yet expired, and what unfinished ones reserved."""
    now = timezone.now()
    kept = Export.objects.filter(project=project, status=JobStatus.READY, expires_at__gt=now).exclude(path="")
    reserved = Export.objects.filter(project=project, status__in=UNFINISHED)
    return (kept.aggregate(total=Sum("size_bytes"))["total"] or 0) + (
        reserved.aggregate(total=Sum("reserved_bytes"))["total"] or 0
    )


def check_quota(project: Project, wanted: int) -> None:
    limit = project.max_export_gib * GIB
    used = export_bytes_used(project)
    if used + wanted > limit:
        raise errors.QuotaExceeded(
            f"quota exceeded: project '{project.name}' may keep {project.max_export_gib} GiB of exports, "
            f"{_gib(used)} GiB are taken and this export needs up to {_gib(wanted)} GiB: delete an export "
            "or wait until one expires"
        )


def _gib(size: int) -> str:
    return f"{math.ceil(size / GIB * 10) / 10:g}"


__all__ = [
    "EXPORTABLE",
    "GIB",
    "UNFINISHED",
    "check_exportable",
    "check_quota",
    "check_unfinished",
    "export_bytes_needed",
    "export_bytes_used",
    "live_instances",
]

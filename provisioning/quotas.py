"""Project quotas: what a project holds against each limit, and the check a launch must pass.

The check runs inside the launch transaction with the project row locked, so parallel launches
of one project queue there and none can pass a limit another has just used up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Count, Sum

from portal import errors
from portal.models import Project
from portal.scoping import User
from provisioning.demand import StackDemand
from provisioning.models import ACTIVE_STATUSES, Instance, InstanceQuerySet


@dataclass(frozen=True)
class QuotaLine:
    what: str
    used: int
    limit: int


_USAGE = {"count": Count("id"), "vcpus": Sum("vcpus"), "memory": Sum("memory_mib")}


def _active_instances() -> InstanceQuerySet:
    # Failed stacks hold their quota until they are deleted.
    return Instance.objects.filter(status__in=ACTIVE_STATUSES)


def _quota_lines(project: Project, usage: Mapping[str, int | None]) -> list[QuotaLine]:
    return [
        QuotaLine("instances", usage.get("count") or 0, project.max_instances),
        QuotaLine("vCPUs", usage.get("vcpus") or 0, project.max_vcpus),
        QuotaLine("MiB of memory", usage.get("memory") or 0, project.max_memory_mib),
    ]


def project_usage(project: Project) -> list[QuotaLine]:
    """What the project holds against each quota."""
    return _quota_lines(project, _active_instances().filter(stack__project=project).aggregate(**_USAGE))


def quota_overview(user: User) -> list[tuple[Project, list[QuotaLine]]]:
    """Quota usage of every project the user sees, in one query for all of them."""
    projects = list(Project.objects.visible_to(user))
    usage = {
        row["stack__project"]: row
        for row in _active_instances().filter(stack__project__in=projects).values("stack__project").annotate(**_USAGE)
    }
    return [(project, _quota_lines(project, usage.get(project.pk, {}))) for project in projects]


def check_stack_quota(project: Project, demand: StackDemand) -> None:
    """Refuse (``QuotaExceeded``, naming the limit) a stack that would take the project over any quota."""
    wanted = {"instances": len(demand.instances), "vCPUs": demand.vcpus, "MiB of memory": demand.memory_mib}
    for line in project_usage(project):
        if line.used + wanted[line.what] > line.limit:
            raise errors.QuotaExceeded(
                f"quota exceeded: project '{project.name}' may hold {line.limit} {line.what}, "
                f"{line.used} are in use and this stack needs {wanted[line.what]}"
            )

"""What a launch would take, shown before it is sent: each quota line of the chosen project, and whether
a host has room.

The launch dialog reads it. Both halves are judged as the launch judges them: the demand is the one
the launch service plans (``plan_stack``: the same appliances, sizes and flavors), the quota lines
are those ``check_stack_quota`` compares, and the host check is placement's own (``room_for``: a
disabled, unhealthy or draining host takes no launch). The launch still checks both itself, under
its locks; this is the preview.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from catalog.models import ApplianceVersion
from portal import errors
from portal.models import Project, Role
from portal.scoping import User
from provisioning.demand import StackDemand
from provisioning.placement import room_for
from provisioning.quotas import QuotaLine, describe_seconds, project_usage, usage_lines, with_usage
from provisioning.services.plans import image_disk_gib, plan_stack
from provisioning.templates import TemplateDocument

# The name a plan is made with: it only names instances, which a preview never makes.
_PREVIEW_NAME = "preview"


@dataclass(frozen=True)
class LaunchCost:
    stacks: int
    instances: int
    vcpus: int
    memory_mib: int
    disk_gib: int


def version_launch_cost(version: ApplianceVersion) -> LaunchCost:
    """A bare appliance launch: one stack of one instance at the version's minimum size."""
    return LaunchCost(
        stacks=1,
        instances=1,
        vcpus=version.min_vcpus,
        memory_mib=version.min_ram_mib,
        disk_gib=image_disk_gib(version) or 0,  # 0 while unknown: the launch itself is refused until it is
    )


def suggested_stack_name(version: ApplianceVersion) -> str:
    """A name that is valid and almost surely free: the appliance identifier and a short random tail."""
    return suggested_name_for(version.appliance.identifier)


def suggested_name_for(stem_text: str) -> str:
    """A valid stack name made of ``stem_text`` (lowercased, other characters as ``-``) and a random tail."""
    stem = "".join(c if c.isalnum() and c.isascii() else "-" for c in stem_text.lower())
    stem = "-".join(part for part in stem.split("-") if part)[:34].strip("-") or "stack"
    return f"{stem}-{secrets.token_hex(2)}"


def launchable_projects_usage(user: User) -> list[dict[str, Any]]:
    """Per project the user may launch in: its name, longest lease and each quota line (one query)."""
    projects = with_usage(Project.objects.visible_to(user, min_role=Role.MEMBER)).order_by("name")
    return [
        {
            "id": project.pk,
            "name": project.name,
            "max_lease_seconds": project.max_lease_seconds,
            "lines": [
                {"key": line.key, "what": line.what, "used": line.used, "limit": line.limit}
                for line in usage_lines(project)
            ],
        }
        for project in projects
    ]


@dataclass(frozen=True)
class QuotaRow:
    key: str
    what: str
    wanted: int
    used: int
    limit: int

    @property
    def label(self) -> str:
        """``what`` to start a table row: ``Stacks``, ``MiB of memory``, ``vCPUs`` (kept as written)."""
        return self.what if self.what[:1].isupper() or self.what.startswith("vCPU") else self.what.capitalize()

    @property
    def after(self) -> int:
        return self.used + self.wanted

    @property
    def over(self) -> bool:
        # As check_stack_quota counts: every line, even one this launch adds nothing to.
        return self.after > self.limit


def wanted_of(demand: StackDemand) -> dict[str, int]:
    """What a stack takes of each quota line, keyed as ``QUOTAS``."""
    return {
        "stacks": 1,
        "instances": len(demand.instances),
        "vcpus": demand.vcpus,
        "memory_mib": demand.memory_mib,
        "disk_gib": demand.disk_gib,
    }


def quota_rows(project: Project, demand: StackDemand) -> list[QuotaRow]:
    """``project`` against each line, with ``demand`` added."""
    wanted = wanted_of(demand)
    return [
        QuotaRow(line.key, line.what, wanted[line.key], line.used, line.limit)
        for line in _usage(project)
        if line.key in wanted
    ]


def _usage(project: Project) -> list[QuotaLine]:
    """The project's quota lines: from its ``with_usage`` annotations, else read (one query)."""
    return usage_lines(project) if hasattr(project, "used_stacks") else project_usage(project)


def quota_problems(project: Project, demand: StackDemand) -> list[str]:
    """Why ``project`` would refuse ``demand``, one sentence part per limit, in the reader's words."""
    problems = [
        f"{row.used} of {row.limit} {row.what} in use, this launch needs {row.wanted} more"
        for row in quota_rows(project, demand)
        if row.over
    ]
    if demand.lease_seconds > project.max_lease_seconds:
        problems.append(f"leases may last {describe_seconds(project.max_lease_seconds)} at most")
    return problems


@dataclass(frozen=True)
class LaunchPreview:
    """The launch as the chosen project and the hosts would take it now."""

    project: Project
    demand: StackDemand | None  # None: no plan (the reason is ``plan_problem``)
    rows: list[QuotaRow] = field(default_factory=list)
    quota_problems: list[str] = field(default_factory=list)
    plan_problem: str | None = None  # the launch would be refused before quota and hosts are asked
    capacity_problem: str | None = None

    @property
    def launchable(self) -> bool:
        return self.demand is not None and not (self.quota_problems or self.capacity_problem)

    @property
    def size(self) -> str:
        """The stack's size as one says it: ``2 vCPUs and 512 MiB of memory``."""
        if self.demand is None:
            return ""
        return self.demand.describe()


def planned_demand(
    *, user: User, project: Project, document: TemplateDocument, lease_seconds: int
) -> StackDemand | None:
    """What the launch service would ask for ``document`` in ``project``; None if it would refuse the plan."""
    try:
        plan = plan_stack(user=user, project=project, name=_PREVIEW_NAME, document=document)
    except errors.PortalError:
        return None
    return plan.demand(lease_seconds=lease_seconds)


def preview_launch(
    *, user: User, project: Project, document: TemplateDocument | None, lease_seconds: int
) -> LaunchPreview:
    """What launching ``document`` in ``project`` would meet now.

    ``document`` is None while nothing is chosen yet. A plan the launch would refuse (an appliance
    missing from the project's catalog, a disk size not known yet) is the preview's answer, in the
    launch's own words.
    """
    if document is None:
        return LaunchPreview(project=project, demand=None)
    try:
        plan = plan_stack(user=user, project=project, name=_PREVIEW_NAME, document=document)
    except errors.PortalError as exc:
        return LaunchPreview(project=project, demand=None, plan_problem=sentence(exc.detail))
    demand = plan.demand(lease_seconds=lease_seconds)
    no_room = room_for(demand)
    return LaunchPreview(
        project=project,
        demand=demand,
        rows=quota_rows(project, demand),
        quota_problems=quota_problems(project, demand),
        capacity_problem=sentence(no_room.detail) if no_room else None,
    )


def sentence(text: str) -> str:
    """``text`` as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def fits_quota(project: Project, demand: StackDemand | None) -> bool:
    return demand is not None and not quota_problems(project, demand)

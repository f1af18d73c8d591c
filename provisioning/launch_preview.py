"""What launching one appliance would take from each project's quota, shown before the launch is sent.

The launch dialog reads it: the cost of the version at its smallest size (what a bare appliance
launch uses) and, per project the user may launch in, what the project holds against each limit.
The launch service still checks the quota itself, under the project's lock; this is the preview.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from catalog.models import ApplianceVersion
from portal.models import Project, Role
from portal.scoping import User
from provisioning.quotas import usage_lines, with_usage
from provisioning.services.plans import image_disk_gib


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
    stem = "".join(c if c.isalnum() else "-" for c in version.appliance.identifier.lower()).strip("-")[:35] or "stack"
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

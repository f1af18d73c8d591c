"""Reading exports, always through the caller's projects.

An export is a copy of a project's disks: its members' business, as the export itself is. A viewer,
or anyone outside the project, finds no such export (404), as with everything of another project.
"""

from __future__ import annotations

from django.db.models import QuerySet

from portal import errors
from portal.models import Role
from portal.scoping import User, project_ids_for
from provisioning.models import Stack
from transfers.models import Export

RECENT_PER_STACK = 5


def exports_visible_to(user: User) -> QuerySet[Export]:
    return Export.objects.filter(project__in=project_ids_for(user, min_role=Role.MEMBER)).select_related(
        "project", "stack", "instance"
    )


def export_of(user: User, export_id: int) -> Export:
    export = exports_visible_to(user).filter(pk=export_id).first()
    if export is None:
        raise errors.NotFound("no such export")
    return export


def recent_stack_exports(user: User, stack: Stack) -> list[Export]:
    """The stack's latest exports the user may see (none for a viewer), newest first."""
    return list(exports_visible_to(user).filter(stack=stack).order_by("-created_at", "-id")[:RECENT_PER_STACK])


__all__ = ["export_of", "exports_visible_to", "recent_stack_exports"]

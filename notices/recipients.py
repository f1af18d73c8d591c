"""Who is told about a stack: everyone who may act on it (members and owners), signed-in accounts only."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from portal.models import Project, Role
from portal.scoping import Account

ACTING_ROLES = (Role.MEMBER, Role.OWNER)


def people_who_may_act(project: Project) -> QuerySet[Account]:
    """Active members and owners of ``project``, in a stable order. Viewers cannot extend a lease."""
    return (
        get_user_model()
        .objects.filter(
            is_active=True,
            memberships__project=project,
            memberships__role__in=[role.value for role in ACTING_ROLES],
        )
        .order_by("username")
    )

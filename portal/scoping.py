"""The one place that decides what a user may see and do.

Every tenant-owned model's queryset derives from ``portal.querysets.ProjectScopedQuerySet`` and
says once where its project is; selectors, viewsets, views and consumers all narrow with ``.visible_to(user)``.
Services that change something check ``require_role`` first. Objects outside the caller's
projects are reported as missing (404), never as forbidden, so their existence does not leak.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth import models as auth_models
from django.db.models import Model, QuerySet

from portal import errors
from portal.models import Membership, Project, Role

# A signed-in person. The portal keeps Django's own user model (AUTH_USER_MODEL is not swapped).
Account = auth_models.User
# Whoever makes a request, signed in or not: what django-stubs gives ``request.user`` in views and viewsets.
User = Account | auth_models.AnonymousUser


def _roles_at_least(min_role: Role) -> list[str]:
    return [role.value for role in Role if role.rank >= min_role.rank]


def is_operator(user: User) -> bool:
    """Operators (staff, the people who use the Django admin) run the platform and see every project."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def project_ids_for(user: User, *, min_role: Role = Role.VIEWER) -> QuerySet[Model, Mapping[str, object]]:
    """A subquery of the ids of the projects ``user`` holds at least ``min_role`` in."""
    if not (user.is_authenticated and user.is_active):
        return Project.objects.none().values("pk")
    if is_operator(user):
        return Project.objects.values("pk")
    return Membership.objects.filter(user=user, role__in=_roles_at_least(min_role)).values("project_id")


def role_in(user: User, project: Project) -> Role | None:
    if is_operator(user):
        return Role.OWNER
    if not (user.is_authenticated and user.is_active):
        return None
    membership = Membership.objects.filter(user=user, project=project).only("role").first()
    return Role(membership.role) if membership else None


def require_role(user: User, project: Project, min_role: Role) -> Role:
    """Return the user's role in ``project`` or raise: NotFound if not a member, PermissionDenied if too low."""
    role = role_in(user, project)
    if role is None:
        raise errors.NotFound("no such project")
    if role.rank < min_role.rank:
        raise errors.PermissionDenied(
            f"this needs the {min_role.label.lower()} role in project {project.name}: ask one of its owners"
        )
    return role

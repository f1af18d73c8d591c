"""The one place that decides what a user may see and do.

Every selector, viewset and consumer narrows its queryset with ``scope_to_user``, and every
service that changes something checks ``require_role`` first. Objects outside the caller's
projects are reported as missing (404), never as forbidden, so their existence does not leak.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, OuterRef, Q, QuerySet, Subquery, Value
from django.http import Http404

from portal.models import Membership, Project, Role

User = AbstractBaseUser | AnonymousUser


class PermissionDeniedForRole(Exception):
    """The user is in the project but their role does not allow the action."""

    def __init__(self, *, project: Project, needed: Role) -> None:
        super().__init__(f"this needs the {needed.label.lower()} role in project '{project.name}'")
        self.project = project
        self.needed = needed


def _roles_at_least(min_role: Role) -> list[str]:
    return [role.value for role in Role if role.rank >= min_role.rank]


def is_operator(user: User) -> bool:
    """Operators (staff, the people who use the Django admin) run the platform and see every project."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def project_ids_for(user: User, *, min_role: Role = Role.VIEWER) -> QuerySet:
    if not (user.is_authenticated and user.is_active):
        return Project.objects.none().values("pk")
    if is_operator(user):
        return Project.objects.values("pk")
    return Membership.objects.filter(user=user, role__in=_roles_at_least(min_role)).values("project_id")


def projects_for(user: User, *, min_role: Role = Role.VIEWER) -> QuerySet[Project]:
    return Project.objects.filter(pk__in=project_ids_for(user, min_role=min_role))


def projects_with_role(user: User) -> QuerySet[Project]:
    """The user's projects, each annotated with ``user_role`` (operators count as owners everywhere)."""
    if is_operator(user):
        role = Value(Role.OWNER.value)
    else:
        role = Subquery(Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1])
    return projects_for(user).annotate(user_role=role)


def scope_to_user(
    queryset: QuerySet,
    user: User,
    *,
    project_field: str = "project",
    min_role: Role = Role.VIEWER,
    include_shared: bool = False,
) -> QuerySet:
    """Narrow ``queryset`` to rows whose ``project_field`` is one of the user's projects.

    ``include_shared`` also keeps rows with no project (the operator-run public catalog).
    """
    condition = Q(**{f"{project_field}__in": project_ids_for(user, min_role=min_role)})
    if include_shared:
        condition |= Q(**{f"{project_field}__isnull": True})
    return queryset.filter(condition)


def get_scoped_or_404(queryset: QuerySet, user: User, *, project_field: str = "project", **lookup) -> Model:
    try:
        return scope_to_user(queryset, user, project_field=project_field).get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404(f"no such {queryset.model._meta.verbose_name}") from None


def role_in(user: User, project: Project) -> Role | None:
    if is_operator(user):
        return Role.OWNER
    if not (user.is_authenticated and user.is_active):
        return None
    membership = Membership.objects.filter(user=user, project=project).only("role").first()
    return Role(membership.role) if membership else None


def require_role(user: User, project: Project, min_role: Role) -> Role:
    """Return the user's role in ``project`` or raise: Http404 if not a member, PermissionDeniedForRole if too low."""
    role = role_in(user, project)
    if role is None:
        raise Http404("no such project")
    if role.rank < min_role.rank:
        raise PermissionDeniedForRole(project=project, needed=min_role)
    return role

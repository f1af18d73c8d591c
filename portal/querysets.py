"""Querysets that know which project their rows belong to, so scoping is part of every model.

Kept apart from ``portal.scoping`` (which imports the tenancy models) so that those models can use
it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, Q, QuerySet

from portal import errors

if TYPE_CHECKING:
    from portal.models import Role
    from portal.scoping import User

_M = TypeVar("_M", bound=Model)


class ProjectScopedQuerySet(QuerySet[_M]):
    """A queryset of rows that belong to a project; ``visible_to`` keeps the caller's.

    Subclasses name the path to the project once (``project_path``); rows with no project are the
    operators' shared catalog and are visible to everyone when ``unowned_is_shared`` is set.
    """

    project_path: ClassVar[str] = "project"
    unowned_is_shared: ClassVar[bool] = False

    def visible_to(self, user: User, *, min_role: Role | None = None) -> Self:
        from portal.models import Role
        from portal.scoping import project_ids_for

        condition = Q(**{f"{self.project_path}__in": project_ids_for(user, min_role=min_role or Role.VIEWER)})
        if self.unowned_is_shared:
            condition |= Q(**{f"{self.project_path}__isnull": True})
        return self.filter(condition)

    def get_visible(self, user: User, **lookup: object) -> _M:
        """The one row matching ``lookup`` that ``user`` may see; otherwise ``errors.NotFound``."""
        try:
            return self.visible_to(user).get(**lookup)
        except ObjectDoesNotExist:  # what self.model.DoesNotExist derives from, which the stubs know
            raise errors.NotFound(f"no such {self.model._meta.verbose_name}") from None

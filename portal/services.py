"""Writes for tenancy: owners manage who is in their project and with which role."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from portal import audit, errors
from portal.models import Membership, Project, Role
from portal.scoping import User, require_role


def membership_set(*, actor: User, project: Project, username: str, role: Role) -> Membership:
    """Add ``username`` to the project with ``role``, or change their role. Owners only."""
    require_role(actor, project, Role.OWNER)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise errors.Invalid.for_field("username", f"no active user '{username}'")
    with transaction.atomic():
        # Locking the project serialises membership changes, so two owners cannot demote each other at once.
        Project.objects.select_for_update().get(pk=project.pk)
        membership = Membership.objects.filter(project=project, user=user).first()
        if membership is not None and membership.role == Role.OWNER and role != Role.OWNER:
            _keep_an_owner(project, leaving=membership)
        membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
        audit.record(actor=actor, action="membership.set", target=membership, project=project, role=role)
    return membership


def membership_remove(*, actor: User, project: Project, username: str) -> None:
    require_role(actor, project, Role.OWNER)
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)
        membership = Membership.objects.filter(project=project, user__username=username).first()
        if membership is None:
            raise errors.Invalid.for_field("username", f"'{username}' is not in project '{project.name}'")
        if membership.role == Role.OWNER:
            _keep_an_owner(project, leaving=membership)
        audit.record(actor=actor, action="membership.remove", target=membership, project=project)
        membership.delete()


def _keep_an_owner(project: Project, *, leaving: Membership) -> None:
    if not Membership.objects.filter(project=project, role=Role.OWNER).exclude(pk=leaving.pk).exists():
        raise errors.Invalid.for_field("role", f"project '{project.name}' must keep at least one owner")

"""Writes for tenancy: operators make projects and set their quotas; owners manage who is in them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from portal import audit, errors
from portal.lease_bounds import out_of_lease_bounds, within_lease_bounds
from portal.models import Membership, Project, Role
from portal.scoping import User, is_operator, require_role

# The limits of a project (checked by provisioning.quotas), and what else an operator may set on one.
QUOTA_FIELDS = tuple(field.name for field in Project._meta.get_fields() if field.name.startswith("max_"))
PROJECT_FIELDS = ("name", "description", *QUOTA_FIELDS)
# A project's longest lease may not be shorter than the shortest lease a launch accepts.


def project_create(*, actor: User, name: str, **values: Any) -> Project:
    """A new project (no members yet: add an owner next). Operators only."""
    require_operator(actor)
    _refuse_unknown(values, allowed=PROJECT_FIELDS)
    project = Project(name=name, **values)
    _validate(project)
    with transaction.atomic():
        project.save()
        audit.record(actor=actor, action="project.create", target=project, project=project, **values)
    return project


def project_update(*, actor: User, project: Project, **changes: Any) -> Project:
    """Change a project's name, description or quotas. Operators only; every change is audited.

    Lowering a limit below what the project holds refuses its next launches; nothing running is touched.
    """
    require_operator(actor)
    _refuse_unknown(changes, allowed=PROJECT_FIELDS)
    with transaction.atomic():
        # The launch's quota check holds this lock too: a launch sees the old limits or the new ones.
        locked = Project.objects.select_for_update().get(pk=project.pk)
        changed = {field: (getattr(locked, field), value) for field, value in changes.items()}
        changed = {field: pair for field, pair in changed.items() if pair[0] != pair[1]}
        if not changed:
            return locked
        for field, (_old, new) in changed.items():
            setattr(locked, field, new)
        _validate(locked)
        locked.save(update_fields=list(changed))
        audit.record(
            actor=actor,
            action="project.update",
            target=locked,
            project=locked,
            changes={field: list(pair) for field, pair in changed.items()},
        )
    return locked


def require_operator(actor: User) -> None:
    """Refuse anyone but an operator (``PermissionDenied``)."""
    if not is_operator(actor):
        raise errors.PermissionDenied("only operators may create projects or change their quotas")


def _refuse_unknown(values: dict[str, Any], *, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise errors.Invalid(f"a project has no setting called {', '.join(unknown)}")


def _validate(project: Project) -> None:
    try:
        project.full_clean()
    except ValidationError as exc:
        raise errors.Invalid.from_django(exc) from None
    if not within_lease_bounds(project.max_lease_seconds):
        raise errors.Invalid.for_field("max_lease_seconds", out_of_lease_bounds("the longest lease"))


def membership_set(*, actor: User, project: Project, username: str, role: Role) -> Membership:
    """Add ``username`` to the project with ``role``, or change their role. Owners only."""
    require_role(actor, project, Role.OWNER)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise errors.Invalid.for_field(
            "username",
            f"there is no user called {username} who can sign in: check the spelling",
        )
    with transaction.atomic():
        # Locking the project serialises membership changes, so two owners cannot demote each other at once.
        Project.objects.select_for_update().get(pk=project.pk)
        membership = Membership.objects.filter(project=project, user=user).first()
        if membership is not None and membership.role == Role.OWNER and role != Role.OWNER:
            _keep_an_owner(project, leaving=membership, blame="role")
        membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
        audit.record(actor=actor, action="membership.set", target=membership, project=project, role=role)
    return membership


def membership_remove(*, actor: User, project: Project, username: str) -> None:
    require_role(actor, project, Role.OWNER)
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)
        membership = Membership.objects.filter(project=project, user__username=username).first()
        if membership is None:
            raise errors.Invalid.for_field("username", f"{username} is not a member of project {project.name}")
        if membership.role == Role.OWNER:
            _keep_an_owner(project, leaving=membership, blame=None)
        audit.record(actor=actor, action="membership.remove", target=membership, project=project)
        membership.delete()


def _keep_an_owner(project: Project, *, leaving: Membership, blame: str | None) -> None:
    """Refuse to leave the project without an owner: the request is well formed, but the project's
    state (who else owns it) does not allow it, so it is a conflict (409), not bad input."""
    if not Membership.objects.filter(project=project, role=Role.OWNER).exclude(pk=leaving.pk).exists():
        message = f"project {project.name} must keep at least one owner: make someone else an owner first"
        raise errors.WrongState.for_field(blame, message) if blame else errors.WrongState(message)

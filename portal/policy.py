"""A project's lease policy: what a stack's lease is, what happens when it ends, who is warned when,
and the webhook told about it. Owners change it (operators too), but only operators lengthen the
longest life (``max_lease_seconds``, the bound a project's data may live); the API and the policy
page both call ``project_policy_update``, so the rules are checked in one place.

Every change is in the audit trail, the webhook's secret excepted (the entry says only whether it
changed). The webhook's address is checked before the project is locked: the check looks the host
up, and no transaction waits on the network.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from notices.webhook_address import check_webhook_url
from portal import audit, errors
from portal.lease_bounds import out_of_lease_bounds, within_lease_bounds
from portal.models import Project, Role, RunEnd
from portal.moments import duration_text
from portal.scoping import User, require_role

POLICY_FIELDS = (
    "run_lease_seconds",
    "at_run_end",
    "storage_lease_seconds",
    "max_extension_seconds",
    "max_lease_seconds",
    "warn_before",
    "idle_after_seconds",
    "webhook_url",
    "webhook_secret",
)
# Durations that are leases: each within the deployment's bounds (PORTAL_MAX_LEASE and the minimum).
LEASES = {
    "run_lease_seconds": "the run lease",
    "storage_lease_seconds": "the storage lease",
    "max_lease_seconds": "the longest life",
}
MIN_EXTENSION_SECONDS = 60
MAX_WARNINGS = 10
WARNING_LIMIT_SECONDS = 31 * 24 * 3600  # a warning must come less than this before the end
MIN_IDLE_SECONDS = 60
SECRET_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 200


def project_policy_update(*, user: User, project: Project, **changes: Any) -> Project:
    """Change some of the policy's fields (``POLICY_FIELDS``); those left out stay. Owners only.

    ``webhook_url`` None or empty removes the webhook and its secret; a webhook needs a secret.
    """
    require_role(user, project, Role.OWNER)
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise errors.Invalid(f"the lease policy has no field {', '.join(unknown)}")
    if "webhook_url" in changes:
        changes["webhook_url"] = changes["webhook_url"] or ""
        if changes["webhook_url"]:
            check_webhook_url(changes["webhook_url"])  # before the lock: it looks the host up
        else:
            changes["webhook_secret"] = ""
    if "webhook_secret" in changes:
        changes["webhook_secret"] = changes["webhook_secret"] or ""
    _check_each(changes)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        changed = {field: (getattr(locked, field), value) for field, value in changes.items()}
        changed = {field: pair for field, pair in changed.items() if pair[0] != pair[1]}
        for field, (_old, new) in changed.items():
            setattr(locked, field, new)
        if not changed:
            return locked
        longest = changed.get("max_lease_seconds")
        if longest is not None and longest[1] > longest[0] and not getattr(user, "is_staff", False):
            # The longest life is the operators' bound on what a project keeps: owners may only shorten it.
            raise errors.PermissionDenied(
                "only operators may lengthen a project's longest life; owners may shorten it",
            )
        _check_together(locked, changed=set(changed))
        locked.save(update_fields=list(changed))
        audit.record(
            actor=user,
            action="project.policy_update",
            target=locked,
            project=locked,
            changes={field: _audited(field, pair) for field, pair in changed.items()},
        )
    return locked


def _audited(field: str, pair: tuple[Any, Any]) -> Any:
    if field == "webhook_secret":
        return "removed" if not pair[1] else "changed"
    return list(pair)


def _check_each(changes: dict[str, Any]) -> None:
    """Each given value on its own; the first problem is raised on its field."""
    for field, subject in LEASES.items():
        if field in changes and not (_is_int(changes[field]) and within_lease_bounds(changes[field])):
            raise errors.Invalid.for_field(field, out_of_lease_bounds(subject))
    if "max_extension_seconds" in changes:
        value = changes["max_extension_seconds"]
        if not (_is_int(value) and MIN_EXTENSION_SECONDS <= value <= settings.MAX_LEASE_SECONDS):
            raise errors.Invalid.for_field(
                "max_extension_seconds",
                f"the longest extension must be between {duration_text(MIN_EXTENSION_SECONDS)} and "
                f"{duration_text(settings.MAX_LEASE_SECONDS)}",
            )
    if "at_run_end" in changes and changes["at_run_end"] not in RunEnd.values:
        raise errors.Invalid.for_field("at_run_end", f"at the run's end a stack is one of: {', '.join(RunEnd.values)}")
    if "warn_before" in changes:
        changes["warn_before"] = _warnings(changes["warn_before"])
    if "idle_after_seconds" in changes:
        value = changes["idle_after_seconds"]
        if value is not None and not (_is_int(value) and MIN_IDLE_SECONDS <= value <= settings.MAX_LEASE_SECONDS):
            raise errors.Invalid.for_field(
                "idle_after_seconds",
                f"idle time must be between {duration_text(MIN_IDLE_SECONDS)} and "
                f"{duration_text(settings.MAX_LEASE_SECONDS)}, or empty",
            )
    secret = changes.get("webhook_secret")
    if secret and not (SECRET_MIN_LENGTH <= len(secret) <= SECRET_MAX_LENGTH):
        raise errors.Invalid.for_field(
            "webhook_secret",
            f"the webhook's secret must have {SECRET_MIN_LENGTH} to {SECRET_MAX_LENGTH} characters",
        )


def _warnings(value: Any) -> list[int]:
    """The warning offsets, longest first; at most ``MAX_WARNINGS``, each once, each in range."""
    if not isinstance(value, list | tuple):
        raise errors.Invalid.for_field("warn_before", "warnings are a list of seconds before the lease ends")
    if len(value) > MAX_WARNINGS:
        raise errors.Invalid.for_field("warn_before", f"at most {MAX_WARNINGS} warnings")
    if not all(_is_int(offset) and 0 < offset < WARNING_LIMIT_SECONDS for offset in value):
        raise errors.Invalid.for_field(
            "warn_before",
            f"each warning must come between 1 second and {duration_text(WARNING_LIMIT_SECONDS - 1)} before the end",
        )
    if len(set(value)) != len(value):
        raise errors.Invalid.for_field("warn_before", "each warning may be given once")
    return sorted(value, reverse=True)


def _check_together(project: Project, *, changed: set[str]) -> None:
    """Rules between fields, on the policy as it would be after the change (blamed on the changed field)."""
    if project.run_lease_seconds > project.max_lease_seconds:
        if "run_lease_seconds" in changed:
            raise errors.Invalid.for_field(
                "run_lease_seconds", "the run lease may not be longer than the longest life of a stack"
            )
        raise errors.Invalid.for_field("max_lease_seconds", "the longest life may not be shorter than the run lease")
    if project.webhook_url and not project.webhook_secret:
        raise errors.Invalid.for_field("webhook_secret", "a webhook needs a secret: every delivery is signed with it")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

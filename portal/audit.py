"""Writing the audit trail: one call per user-visible change, made by services."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from portal.models import AuditEvent, Project
from portal.scoping import Account, User


def record(*, actor: User | None, action: str, target: Model, project: Project | None = None, **detail: Any) -> None:
    AuditEvent.objects.create(
        actor=actor if isinstance(actor, Account) else None,  # anonymous callers leave no actor
        project=project,
        action=action,
        target=f"{target._meta.label_lower}:{target.pk} {target}"[:200],
        detail=detail,
    )

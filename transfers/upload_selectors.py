"""Reading uploads, always through the caller's projects.

An upload is its project's members' business: they send it, watch it, end it. A viewer, or anyone
outside the project, finds no such upload (404), as with everything of another project.
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from portal import errors
from portal.models import Role
from portal.scoping import User, project_ids_for
from transfers.models import Upload


def uploads_visible_to(user: User) -> QuerySet[Upload]:
    return Upload.objects.filter(project__in=project_ids_for(user, min_role=Role.MEMBER)).select_related(
        "project", "result"
    )


def upload_of(user: User, upload_id: uuid.UUID | str) -> Upload:
    upload = uploads_visible_to(user).filter(pk=upload_id).first()
    if upload is None:
        raise errors.NotFound("no such upload")
    return upload


__all__ = ["upload_of", "uploads_visible_to"]

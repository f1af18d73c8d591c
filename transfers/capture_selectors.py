"""Reading captures, always through the caller's projects (another project's ids answer 404)."""

from __future__ import annotations

import math

from django.db.models import QuerySet

from portal import errors
from portal.scoping import User, project_ids_for
from transfers.models import Capture, JobStatus


def captures_visible_to(user: User) -> QuerySet[Capture]:
    """The captures of the caller's projects (another project's ids answer 404)."""
    return Capture.objects.filter(project__in=project_ids_for(user)).select_related("project", "stack", "template")


def capture_get(*, user: User, capture_id: int) -> Capture:
    capture = captures_visible_to(user).filter(pk=capture_id).first()
    if capture is None:
        raise errors.NotFound("no such capture")
    return capture


def progress_percent(capture: Capture) -> int | None:
    """How far the disks' copy is, 0-100; None before the sizes are known. Ready is 100."""
    if capture.status == JobStatus.READY:
        return 100
    if capture.bytes_total <= 0:
        return None
    return min(100, math.floor(100 * capture.bytes_done / capture.bytes_total))

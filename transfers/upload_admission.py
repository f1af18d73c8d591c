"""What a new upload must pass before its row and file are made: room on the upload folder's disk, a name
neither the project's own catalog nor one of its unfinished uploads has, and the project's limit of
unfinished uploads."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q, QuerySet, Sum

from catalog.models import ApplianceVersion, Feed
from portal import errors
from portal.models import Project
from transfers import tus
from transfers.models import Upload
from transfers.upload_spec import UploadSpec


def check_room(length: int, *, now: datetime) -> None:
    """The folder's disk must hold this file besides what unfinished uploads are still owed."""
    folder = Path(settings.UPLOAD_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    owed = Upload.objects.filter(status=Upload.Status.RECEIVING, expires_at__gt=now).aggregate(
        total=Sum(F("length") - F("offset"))
    )["total"]
    if shutil.disk_usage(folder).free - (owed or 0) < length:
        raise tus.NoRoom("the portal has no room for a file of this size right now; try again later")


def check_name_free(*, project: Project, spec: UploadSpec, now: datetime) -> None:
    taken = ApplianceVersion.objects.filter(
        appliance__feed__project=project,
        appliance__feed__format=Feed.Format.LOCAL,
        appliance__identifier=spec.appliance,
        version=spec.version,
    ).exists()
    if taken:
        raise errors.Invalid.for_field(
            "version",
            f"appliance '{spec.appliance}' already has a version '{spec.version}' in this project's catalog",
        )
    if _unfinished(project=project, now=now).filter(appliance=spec.appliance, version=spec.version).exists():
        raise errors.Invalid.for_field(
            "version",
            f"another upload to this project is already bringing appliance '{spec.appliance}' version "
            f"'{spec.version}'; finish or delete it first",
        )


def check_unfinished_limit(*, project: Project, now: datetime) -> None:
    if _unfinished(project=project, now=now).count() >= settings.UPLOADS_PER_PROJECT:
        raise errors.QuotaExceeded(
            f"project '{project.name}' has {settings.UPLOADS_PER_PROJECT} unfinished uploads, the most it may have; "
            "finish or delete one first"
        )


def _unfinished(*, project: Project, now: datetime) -> QuerySet[Upload]:
    """The project's uploads still under way: receiving (and not expired) or being checked."""
    receiving = Q(status=Upload.Status.RECEIVING, expires_at__gt=now)
    return Upload.objects.filter(receiving | Q(status=Upload.Status.PROCESSING), project=project)


__all__ = ["check_name_free", "check_room", "check_unfinished_limit"]

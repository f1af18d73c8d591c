"""The exports' sweep: expired exports' files go (their rows stay, answering 410), exports whose worker
died are ended, and folders no export row owns are removed."""

from __future__ import annotations

import shutil
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from transfers.export_admission import UNFINISHED
from transfers.export_files import remove_folder
from transfers.models import Export, JobStatus


def sweep_exports() -> int:
    """Remove expired exports' files (their rows stay, answering 410), end exports whose worker died,
    and remove folders no export row owns; the number of exports ended or expired."""
    now = timezone.now()
    count = 0
    expired = Export.objects.filter(status=JobStatus.READY, expires_at__lte=now).exclude(path="")
    for export in expired.iterator():
        remove_folder(export)
        count += Export.objects.filter(pk=export.pk).update(path="", updated_at=now)
    # A job makes progress at least every second while it copies; one silent this long lost its worker.
    lost_before = now - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS)
    lost = Export.objects.filter(status__in=UNFINISHED).filter(
        Q(updated_at__lt=lost_before) | Q(started_at__isnull=True, created_at__lt=lost_before)
    )
    for export in lost.iterator():
        remove_folder(export)
        count += Export.objects.filter(pk=export.pk, status__in=UNFINISHED).update(
            status=JobStatus.FAILED,
            error="the export stopped: its worker went away; export it again",
            path="",
            finished_at=now,
            updated_at=now,
        )
    _remove_orphans()
    return count


def _remove_orphans() -> None:
    """Folders of this deployment's exports whose row is gone (their project was deleted, ...)."""
    root = Path(settings.EXPORT_DIR)
    prefix = f"{settings.DEPLOYMENT_NAME}-"
    if not root.is_dir():
        return
    for project_folder in root.iterdir():
        if not project_folder.name.startswith(prefix) or not project_folder.is_dir():
            continue
        names = [p.name for p in project_folder.iterdir()]
        known = {
            str(pk)
            for pk in Export.objects.filter(pk__in=[int(n) for n in names if n.isdigit()])
            .exclude(path="", status__in=(JobStatus.READY, JobStatus.FAILED))
            .values_list("pk", flat=True)
        }
        for name in names:
            if name not in known:
                shutil.rmtree(project_folder / name, ignore_errors=True)
        with suppress(OSError):
            project_folder.rmdir()


__all__ = ["sweep_exports"]

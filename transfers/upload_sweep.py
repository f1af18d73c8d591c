"""The uploads' sweep: expired uploads go (file and row), checks whose worker is gone are ended, and files
in the upload folder that no upload owns are removed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from transfers.models import Upload
from transfers.upload_processing import finish_processing

# A file in the upload folder with no row is removed once it is this old: a creation writes the file
# just before its row commits, so a younger one may still be getting its row.
ORPHAN_FILE_AGE = timedelta(hours=1)
SWEEP_BATCH = 500


def uploads_sweep(*, now: datetime | None = None) -> int:
    """Remove expired uploads (file and row), end checks whose worker is gone, and delete stray files.

    Returns how many uploads and files it removed or ended.
    """
    now = now or timezone.now()
    done = 0
    expired = Upload.objects.filter(expires_at__lte=now).exclude(status=Upload.Status.PROCESSING)
    for upload_id, path in list(expired.values_list("pk", "path")[:SWEEP_BATCH]):
        if path:
            Path(path).unlink(missing_ok=True)
        Upload.objects.filter(pk=upload_id).exclude(status=Upload.Status.PROCESSING).delete()
        done += 1
    # A check runs at most a task's timeout once started (it touches updated_at then); it may wait
    # in the queue before that, behind others' downloads, so only a long silence means it is lost.
    lost_after = timedelta(seconds=max(settings.UPLOAD_KEEP_SECONDS, settings.WORKER_GONE_AFTER_SECONDS))
    lost = Upload.objects.filter(status=Upload.Status.PROCESSING, updated_at__lt=now - lost_after)
    for upload in list(lost[:SWEEP_BATCH]):
        path = upload.path
        finish_processing(upload, error="checking the file was interrupted (its worker stopped); upload it again")
        if path:
            Path(path).unlink(missing_ok=True)
        # Kept a while longer, so whoever sent it can read why it failed.
        keep_until = max(upload.expires_at, now + timedelta(seconds=settings.UPLOAD_KEEP_SECONDS))
        Upload.objects.filter(pk=upload.pk).update(expires_at=keep_until)
        done += 1
    return done + _remove_orphan_files(now=now)


def _remove_orphan_files(*, now: datetime) -> int:
    folder = Path(settings.UPLOAD_DIR)
    if not folder.is_dir():
        return 0
    prefix = f"{settings.DEPLOYMENT_NAME}-"
    found: dict[str, Path] = {}
    for entry in folder.iterdir():
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".upload")):
            continue
        try:
            upload_id = str(uuid.UUID(name[len(prefix) : -len(".upload")]))
        except ValueError:
            continue
        found[upload_id] = entry
        if len(found) >= SWEEP_BATCH:
            break
    known = {str(pk) for pk in Upload.objects.filter(pk__in=list(found)).values_list("pk", flat=True)}
    removed = 0
    oldest = (now - ORPHAN_FILE_AGE).timestamp()
    for upload_id, entry in found.items():
        if upload_id in known:
            continue
        try:
            if entry.stat().st_mtime < oldest:
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


__all__ = ["ORPHAN_FILE_AGE", "uploads_sweep"]

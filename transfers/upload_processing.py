"""Checking and converting a complete upload into a version of its project's own catalog, exactly as a
downloaded image would be (``catalog.own_images``); ready or failed, the uploaded file goes."""

from __future__ import annotations

import fcntl
import logging
import re
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.images import sniff_format
from catalog.models import ApplianceVersion
from catalog.own_images import OwnVersion, own_version_add
from portal import audit
from transfers.models import Upload
from transfers.upload_checks import UnusableUpload, check_upload_content

logger = logging.getLogger(__name__)

# What a failure nobody foresaw tells the uploader; the exception itself is logged for operators.
UNEXPECTED_FAILURE = "the portal failed while checking the file; its operators can find the reason in the log"


def upload_process(*, upload: Upload) -> Upload:
    """Check and convert a complete upload into its project's own catalog; ready or failed, the file goes.

    A second run for the same upload (a task handed out twice) finds the file locked or gone and
    leaves the outcome to the first.
    """
    if upload.status != Upload.Status.PROCESSING:
        return upload
    path = Path(upload.path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return finish_processing(upload, error="the uploaded file is gone from the portal's disk; upload it again")
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return upload
        # Checks may take minutes; the sweep tells a running check from a lost one by this moment.
        Upload.objects.filter(pk=upload.pk).update(updated_at=timezone.now())
        try:
            version = _into_catalog(upload, path)
        except (UnusableUpload, CatalogError) as exc:
            return finish_processing(upload, error=_for_people(str(exc), upload=upload))
        except Exception:
            logger.exception("upload %s: checking the file failed", upload.pk)
            return finish_processing(upload, error=UNEXPECTED_FAILURE)
        finally:
            path.unlink(missing_ok=True)
    return finish_processing(upload, version=version)


def finish_processing(upload: Upload, *, version: ApplianceVersion | None = None, error: str = "") -> Upload:
    """Settle an upload being checked as ready (with its version) or failed (with the reason), and record it."""
    status = Upload.Status.READY if version is not None else Upload.Status.FAILED
    Upload.objects.filter(pk=upload.pk, status=Upload.Status.PROCESSING).update(
        status=status, result=version, error=error, path="", updated_at=timezone.now()
    )
    upload.refresh_from_db()
    detail: dict[str, object] = {"version": version.pk} if version is not None else {"reason": error}
    audit.record(
        actor=upload.created_by, action=f"upload.{status.value}", target=upload, project=upload.project, **detail
    )
    return upload


def _into_catalog(upload: Upload, path: Path) -> ApplianceVersion:
    check_upload_content(path, sniffed_format=sniff_format(path))
    spec = OwnVersion(
        appliance=upload.appliance,
        version=upload.version,
        title=upload.title,
        description=f"Uploaded from {upload.filename}." if upload.filename else "",
        role=upload.role,
        service_port=upload.service_port,
    )
    return own_version_add(project=upload.project, spec=spec, source=path)


def _for_people(message: str, *, upload: Upload) -> str:
    """A reason without the portal's own paths (qemu-img's messages quote the files it opened)."""
    if upload.path:
        message = message.replace(upload.path, upload.filename or "the file")
    for folder in (settings.UPLOAD_DIR, settings.IMAGE_CACHE_DIR):
        message = re.sub(re.escape(str(folder)) + r"/[^\s'\"]*", "a file of the portal", message)
    return message


__all__ = ["UNEXPECTED_FAILURE", "finish_processing", "upload_process"]

"""django-q2 entry points for uploads: load the row, call the service (``transfers.upload_processing``,
``transfers.upload_sweep``)."""

from __future__ import annotations

from transfers.models import Upload
from transfers.upload_processing import upload_process
from transfers.upload_sweep import uploads_sweep


def process_upload(upload_id: str) -> str:
    """Check and convert a complete upload into its project's own catalog (queued on Queue.DOWNLOADS)."""
    upload = Upload.objects.select_related("project").filter(pk=upload_id).first()
    if upload is None:
        return "upload no longer exists"
    return upload_process(upload=upload).status


def sweep_uploads() -> int:
    """Remove expired uploads and their files, and end checks whose worker is gone (scheduled)."""
    return uploads_sweep()

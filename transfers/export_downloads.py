"""Downloading a finished export through its signed URL: the URL's secret, and the file behind it while
the export has not expired."""

from __future__ import annotations

import hmac
from pathlib import Path

from django.utils import timezone
from django.utils.crypto import salted_hmac

from portal import errors
from transfers.models import Export, JobStatus

# Part of every download URL handed out: changing it would revoke them all.
_TOKEN_SALT = "transfers.exports.download"  # noqa: S105 - a salt that names the purpose, not a secret


def download_secret(export: Export) -> str:
    """The secret in an export's download URL: derived from its random token and the portal's key, so the
    database alone does not give the URL away, and a new token revokes every URL handed out."""
    return salted_hmac(_TOKEN_SALT, f"{export.pk}:{export.download_token}", algorithm="sha256").hexdigest()


def secret_matches(export: Export, secret: str) -> bool:
    return bool(export.download_token) and hmac.compare_digest(download_secret(export), secret)


def is_expired(export: Export) -> bool:
    """Past its time, or its file already removed: the download answers 410 Gone."""
    if export.status != JobStatus.READY:
        return False
    return not export.path or export.expires_at is None or export.expires_at <= timezone.now()


def downloadable_file(export: Export, secret: str) -> Path:
    """The finished file behind a download URL: ``NotFound`` for a wrong secret or an export not ready,
    ``Gone`` once it expired."""
    if not secret_matches(export, secret) or export.status != JobStatus.READY:
        raise errors.NotFound("no such export")
    if is_expired(export):
        raise Gone("this export has expired and its file was removed; export it again")
    path = Path(export.path)
    if not path.is_file():
        raise Gone("this export's file is gone; export it again")
    return path


class Gone(errors.PortalError):
    """The export was there, and is not any more."""

    code = "gone"
    status = 410


__all__ = ["Gone", "download_secret", "downloadable_file", "is_expired", "secret_matches"]

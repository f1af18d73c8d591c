"""An upload's file on disk: where it lives, made empty, and request bodies appended to it."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from transfers import tus

logger = logging.getLogger(__name__)

# One read from the request and one write to the file: the body never sits in memory whole.
COPY_BYTES = 1024 * 1024


def upload_path(upload_id: uuid.UUID) -> Path:
    """Where an upload's bytes go; the deployment's name in front, so portals sharing the folder never
    take each other's files for orphans."""
    return Path(settings.UPLOAD_DIR) / f"{settings.DEPLOYMENT_NAME}-{upload_id}.upload"


def create_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def copy_body(stream: BinaryIO, fd: int, *, length: int, checksum: tus.Checksum | None) -> tuple[int, bool, bool]:
    """Copy up to ``length`` bytes from ``stream`` to ``fd``: (bytes copied, whole body, checksum matches)."""
    digest = checksum.new_hash() if checksum is not None else None
    start = os.fstat(fd).st_size
    remaining = length
    while remaining:
        try:
            piece = stream.read(min(COPY_BYTES, remaining))
        except OSError:  # the client went away mid-body (Django's UnreadablePostError is one)
            break
        if not piece:
            break
        try:
            _write_all(fd, piece)
        except OSError as exc:
            os.ftruncate(fd, start)
            logger.warning("upload: writing %s bytes failed: %s", len(piece), exc)
            raise tus.NoRoom("the portal could not store these bytes (its disk may be full); try again later") from None
        if digest is not None:
            digest.update(piece)
        remaining -= len(piece)
    matches = digest is None or (checksum is not None and digest.digest() == checksum.digest)
    return length - remaining, remaining == 0, matches


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


__all__ = ["COPY_BYTES", "copy_body", "create_file", "upload_path"]

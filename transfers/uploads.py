"""Uploads of disk images into a project's own catalog: create, append, end, check and convert, sweep.

An upload is a row (``transfers.models.Upload``) and a file under ``UPLOAD_DIR`` that its bytes are
appended to as they arrive (tus PATCH requests, see ``transfers.tus``). The last byte hands it to a
worker (``transfers.upload_tasks``), which checks and converts the file into a version of the
project's own catalog exactly as it would a downloaded image (``transfers.upload_processing``), then
removes the file whatever the outcome. An upload left unfinished expires; the sweep
(``transfers.upload_sweep``) removes it.

Who: members (and owners) of the upload's project; to anyone else there is no such upload.
How much: ``IMAGE_MAX_BYTES`` per file, ``UPLOAD_CHUNK_BYTES`` per request,
``UPLOADS_PER_PROJECT`` unfinished at once, and never more, all projects together, than the upload
folder's disk has free (``transfers.upload_admission``).

The file's size is where the upload stands: bytes are only ever appended (O_APPEND, under an
exclusive lock, at the offset the client named), so whatever reached the disk is a prefix of the
file and a client resumes from there. The row's ``offset`` follows it after every request.

This module receives the bytes; the metadata is read by ``transfers.upload_spec`` and the file is
handled by ``transfers.upload_file``. Their public names are importable from here as well.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import audit, errors
from portal.models import Project, Role
from portal.scoping import User, require_role
from portal.task_queues import Queue, enqueue
from transfers import tus
from transfers.models import Upload
from transfers.upload_admission import check_name_free, check_room, check_unfinished_limit
from transfers.upload_file import COPY_BYTES, copy_body, create_file, upload_path
from transfers.upload_processing import upload_process
from transfers.upload_spec import MAX_PORT, UploadSpec, upload_spec
from transfers.upload_sweep import ORPHAN_FILE_AGE, uploads_sweep

UNFINISHED = (Upload.Status.RECEIVING, Upload.Status.PROCESSING)


def upload_create(*, user: User, length: int, metadata: Mapping[str, str]) -> Upload:
    """A new upload of ``length`` bytes, with its empty file; the client then sends the bytes (PATCH).

    Refused: an empty or too large file, metadata that names no project of the caller's (404) or one
    where they are only a viewer (403), a name the project's own catalog or one of its unfinished
    uploads already has, a project at its limit of unfinished uploads, a disk without room.
    """
    if length <= 0:
        raise errors.Invalid.for_field("Upload-Length", "the file is empty")
    if length > settings.IMAGE_MAX_BYTES:
        raise tus.TooLarge(f"the file is {length} bytes; the portal takes images of at most {settings.IMAGE_MAX_BYTES}")
    spec = upload_spec(metadata)
    project = Project.objects.get_visible(user, pk=spec.project_id)
    require_role(user, project, Role.MEMBER)
    now = timezone.now()
    check_room(length, now=now)
    upload_id = uuid.uuid4()
    path = upload_path(upload_id)
    with transaction.atomic():
        # One creation per project at a time: the name and the limit below hold for parallel requests too.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        check_name_free(project=project, spec=spec, now=now)
        check_unfinished_limit(project=project, now=now)
        upload = Upload.objects.create(
            id=upload_id,
            project=project,
            created_by=user if user.is_authenticated else None,
            appliance=spec.appliance,
            version=spec.version,
            title=spec.title,
            filename=spec.filename,
            service_port=spec.service_port,
            role=spec.role,
            length=length,
            path=str(path),
            expires_at=now + timedelta(seconds=settings.UPLOAD_KEEP_SECONDS),
        )
        create_file(path)
        audit.record(
            actor=user,
            action="upload.create",
            target=upload,
            project=project,
            appliance=spec.appliance,
            version=spec.version,
            length=length,
        )
    return upload


def upload_offset(upload: Upload) -> int:
    """How many bytes of ``upload`` the portal holds (tus HEAD). A finished upload holds them all."""
    if upload.status != Upload.Status.RECEIVING:
        _refuse_ended_early(upload)
        return upload.length
    _refuse_expired(upload)
    try:
        held = Path(upload.path).stat().st_size
    except FileNotFoundError:
        raise _lost_file(upload) from None
    if held == upload.length:
        # Every byte is there but the checks never started (the request that wrote the last one died
        # before it could start them): start them now, or the client would wait for nothing.
        _record_offset(upload, held)
        _start_checks(upload)
    return held


def upload_append(
    *, upload: Upload, offset: int, length: int, stream: BinaryIO, checksum: tus.Checksum | None = None
) -> Upload:
    """Append a request body of ``length`` bytes at ``offset`` (tus PATCH); the last byte starts the checks.

    The body is copied a megabyte at a time. A body that ends early (the connection was cut) keeps
    what arrived, so the client resumes from there; unless it came with a checksum, which only the
    whole body can match.
    """
    if upload.status != Upload.Status.RECEIVING:
        _refuse_ended_early(upload)
        if offset != upload.length:
            raise tus.OffsetMismatch(f"the upload has all its {upload.length} bytes already")
        if length:
            raise tus.TooLarge(f"the upload has all its {upload.length} bytes already")
        return upload
    _refuse_expired(upload)
    if length > settings.UPLOAD_CHUNK_BYTES:
        raise tus.TooLarge(
            f"a request may carry at most {settings.UPLOAD_CHUNK_BYTES} bytes; send the file in parts of that size"
        )
    if offset + length > upload.length:
        raise tus.TooLarge(f"the upload is {upload.length} bytes long; {length} bytes at {offset} would pass its end")
    path = Path(upload.path)
    with _locked_for_append(upload, path) as fd:
        held = os.fstat(fd).st_size
        if held != offset:
            _record_offset(upload, held)
            raise tus.OffsetMismatch(f"the upload stands at {held} bytes, not {offset}; go on from there")
        received, whole, matches = copy_body(stream, fd, length=length, checksum=checksum)
        if checksum is not None and not (whole and matches):
            os.ftruncate(fd, offset)  # a checksum vouches for the whole body or for nothing
        held = os.fstat(fd).st_size
    _record_offset(upload, held)
    if checksum is not None and whole and not matches:
        raise tus.ChecksumMismatch(f"the body does not match its {checksum.algorithm} checksum; nothing was kept")
    if not whole:
        kept = held - offset
        raise errors.Invalid(f"the body ended after {received} of {length} bytes; {kept} were kept")
    if held == upload.length:
        _start_checks(upload)
    return upload


def upload_terminate(*, user: User, upload: Upload) -> None:
    """Remove an upload and its file (tus DELETE). One being checked cannot be stopped; a finished one
    leaves its version in the catalog (only the upload's record goes)."""
    removable = [Upload.Status.RECEIVING, Upload.Status.READY, Upload.Status.FAILED]
    deleted, _ = Upload.objects.filter(pk=upload.pk, status__in=removable).delete()
    if not deleted:
        raise errors.WrongState("the file is being checked and converted; wait until it is ready or failed")
    if upload.path:
        Path(upload.path).unlink(missing_ok=True)
    audit.record(actor=user, action="upload.delete", target=upload, project=upload.project, status=upload.status)


# Receiving


def _refuse_expired(upload: Upload) -> None:
    if upload.expires_at > timezone.now():
        return
    _fail_receiving(upload, "the upload was not finished before it expired; start it again")
    raise tus.UploadGone("this upload expired before its last byte arrived; start a new one")


def _refuse_ended_early(upload: Upload) -> None:
    """An upload that failed before its last byte arrived (it expired, its file went) takes no more bytes."""
    if upload.status == Upload.Status.FAILED and upload.offset < upload.length:
        raise tus.UploadGone(f"this upload ended before its last byte arrived ({upload.error}); start a new one")


def _lost_file(upload: Upload) -> tus.UploadGone:
    _fail_receiving(upload, "the upload's file is gone from the portal's disk; start it again")
    return tus.UploadGone("this upload's file is gone; start a new one")


def _fail_receiving(upload: Upload, reason: str) -> None:
    if upload.path:
        Path(upload.path).unlink(missing_ok=True)
    Upload.objects.filter(pk=upload.pk, status=Upload.Status.RECEIVING).update(
        status=Upload.Status.FAILED, error=reason, path="", updated_at=timezone.now()
    )


@contextmanager
def _locked_for_append(upload: Upload, path: Path) -> Iterator[int]:
    """The upload's file open for appending, held by this request alone (423 while another writes)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        raise _lost_file(upload) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise tus.UploadLocked("another request is sending bytes to this upload; try again in a moment") from None
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _record_offset(upload: Upload, held: int) -> None:
    Upload.objects.filter(pk=upload.pk, status=Upload.Status.RECEIVING).update(offset=held, updated_at=timezone.now())
    upload.offset = held


def _start_checks(upload: Upload) -> None:
    """The last byte is in: hand the file to a worker (once, however many requests end here)."""
    with transaction.atomic():
        moved = Upload.objects.filter(pk=upload.pk, status=Upload.Status.RECEIVING).update(
            status=Upload.Status.PROCESSING, updated_at=timezone.now()
        )
        if moved:
            upload_id = str(upload.pk)
            transaction.on_commit(
                lambda: enqueue(
                    "transfers.upload_tasks.process_upload",
                    upload_id,
                    queue=Queue.DOWNLOADS,
                    task_name=f"upload-{upload_id}",
                )
            )
    if moved:
        upload.status = Upload.Status.PROCESSING


__all__ = [
    "COPY_BYTES",
    "MAX_PORT",
    "ORPHAN_FILE_AGE",
    "UNFINISHED",
    "UploadSpec",
    "upload_append",
    "upload_create",
    "upload_offset",
    "upload_path",
    "upload_process",
    "upload_spec",
    "upload_terminate",
    "uploads_sweep",
]

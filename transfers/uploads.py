"""Uploads of disk images into a project's own catalog: create, append, end, check and convert, sweep.

An upload is a row (``transfers.models.Upload``) and a file under ``UPLOAD_DIR`` that its bytes are
appended to as they arrive (tus PATCH requests, see ``transfers.tus``). The last byte hands it to a
worker (``transfers.upload_tasks``), which checks and converts the file into a version of the
project's own catalog exactly as it would a downloaded image (``catalog.own_images``), then
removes the file whatever the outcome. An upload left unfinished expires; the sweep removes it.

Who: members (and owners) of the upload's project; to anyone else there is no such upload.
How much: ``IMAGE_MAX_BYTES`` per file, ``UPLOAD_CHUNK_BYTES`` per request,
``UPLOADS_PER_PROJECT`` unfinished at once, and never more, all projects together, than the upload
folder's disk has free.

The file's size is where the upload stands: bytes are only ever appended (O_APPEND, under an
exclusive lock, at the offset the client named), so whatever reached the disk is a prefix of the
file and a client resumes from there. The row's ``offset`` follows it after every request.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.feeds import IDENTIFIER_RE
from catalog.images import sniff_format
from catalog.models import ApplianceVersion, Feed
from catalog.own_images import OwnVersion, own_version_add
from portal import audit, errors
from portal.models import Project, Role
from portal.scoping import User, require_role
from portal.task_queues import Queue, enqueue
from provisioning.name_rules import TIER_NAME
from transfers import tus
from transfers.models import Upload
from transfers.upload_checks import UnusableUpload, check_upload_content

logger = logging.getLogger(__name__)

# One read from the request and one write to the file: the body never sits in memory whole.
COPY_BYTES = 1024 * 1024
# A version as people write them: 1.0, 2026-01-31, 12.4+deb1, v3_rc1.
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,49}")
MAX_TITLE_CHARS = 200
MAX_FILENAME_CHARS = 200
# The database's id columns are 64-bit: a larger number names no project.
_MAX_ID = 2**63 - 1
_ID = re.compile(r"[0-9]{1,19}")
MAX_PORT = 65535
_PORT = re.compile(r"[0-9]{1,5}")
# A file in the upload folder with no row is removed once it is this old: a creation writes the file
# just before its row commits, so a younger one may still be getting its row.
ORPHAN_FILE_AGE = timedelta(hours=1)
SWEEP_BATCH = 500
UNFINISHED = (Upload.Status.RECEIVING, Upload.Status.PROCESSING)
# What a failure nobody foresaw tells the uploader; the exception itself is logged for operators.
UNEXPECTED_FAILURE = "the portal failed while checking the file; its operators can find the reason in the log"


@dataclass(frozen=True)
class UploadSpec:
    """What the creation's metadata asks for: where the image goes and what it is called."""

    project_id: int
    appliance: str
    version: str
    title: str = ""
    filename: str = ""
    service_port: int | None = None
    role: str = ""


def upload_spec(metadata: Mapping[str, str]) -> UploadSpec:
    """The creation's metadata, checked; every field at fault is named at once. Unknown keys are ignored
    (tus clients add their own, such as ``filetype``)."""
    problems: dict[str, str] = {}
    project_text = metadata.get("project", "").strip()
    if not project_text:
        problems["project"] = "name the project (its id) the image is for"
    elif not _ID.fullmatch(project_text) or not 1 <= int(project_text) <= _MAX_ID:
        problems["project"] = "the project is given by its id, a whole number"
    appliance = metadata.get("appliance", "").strip()
    if not IDENTIFIER_RE.fullmatch(appliance):
        problems["appliance"] = (
            "the appliance identifier is 1 to 100 characters: a-z, 0-9, '.', '_' and '-', starting with a letter "
            "or digit"
        )
    version = metadata.get("version", "").strip()
    if not VERSION_RE.fullmatch(version):
        problems["version"] = (
            "the version is 1 to 50 characters: letters, digits, '.', '_', '+', '~' and '-', starting with a "
            "letter or digit"
        )
    title = metadata.get("title", "").strip()
    if len(title) > MAX_TITLE_CHARS or _has_control_characters(title):
        problems["title"] = f"the title is at most {MAX_TITLE_CHARS} characters of text"
    port_text = metadata.get("port", "").strip()
    if port_text and (not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= MAX_PORT):
        problems["port"] = f"the service port is a whole number from 1 to {MAX_PORT}"
    role = metadata.get("role", "").strip()
    if role and not TIER_NAME.pattern.fullmatch(role):
        problems["role"] = f"the role is a tier name: {TIER_NAME.rule}"
    if problems:
        first = next(iter(problems.values()))
        raise errors.Invalid(first, fields=problems)
    return UploadSpec(
        project_id=int(project_text),
        appliance=appliance,
        version=version,
        title=title,
        filename=_plain_filename(metadata.get("filename", "")),
        service_port=int(port_text) if port_text else None,
        role=role,
    )


def upload_path(upload_id: uuid.UUID) -> Path:
    """Where an upload's bytes go; the deployment's name in front, so portals sharing the folder never
    take each other's files for orphans."""
    return Path(settings.UPLOAD_DIR) / f"{settings.DEPLOYMENT_NAME}-{upload_id}.upload"


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
    _check_room(length, now=now)
    upload_id = uuid.uuid4()
    path = upload_path(upload_id)
    with transaction.atomic():
        # One creation per project at a time: the name and the limit below hold for parallel requests too.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        _check_name_free(project=project, spec=spec, now=now)
        _check_unfinished_limit(project=project, now=now)
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
        _create_file(path)
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
        received, whole, matches = _copy(stream, fd, length=length, checksum=checksum)
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
        return _finish(upload, error="the uploaded file is gone from the portal's disk; upload it again")
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
            return _finish(upload, error=_for_people(str(exc), upload=upload))
        except Exception:
            logger.exception("upload %s: checking the file failed", upload.pk)
            return _finish(upload, error=UNEXPECTED_FAILURE)
        finally:
            path.unlink(missing_ok=True)
    return _finish(upload, version=version)


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
        _finish(upload, error="checking the file was interrupted (its worker stopped); upload it again")
        if path:
            Path(path).unlink(missing_ok=True)
        # Kept a while longer, so whoever sent it can read why it failed.
        keep_until = max(upload.expires_at, now + timedelta(seconds=settings.UPLOAD_KEEP_SECONDS))
        Upload.objects.filter(pk=upload.pk).update(expires_at=keep_until)
        done += 1
    return done + _remove_orphan_files(now=now)


# Creation


def _plain_filename(text: str) -> str:
    """The file's name as the client had it, for people to recognise: no folders, no control characters."""
    name = re.split(r"[/\\]", text)[-1]
    return "".join(ch for ch in name if not unicodedata.category(ch).startswith("C")).strip()[:MAX_FILENAME_CHARS]


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _check_room(length: int, *, now: datetime) -> None:
    """The folder's disk must hold this file besides what unfinished uploads are still owed."""
    folder = Path(settings.UPLOAD_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    owed = Upload.objects.filter(status=Upload.Status.RECEIVING, expires_at__gt=now).aggregate(
        total=Sum(F("length") - F("offset"))
    )["total"]
    if shutil.disk_usage(folder).free - (owed or 0) < length:
        raise tus.NoRoom("the portal has no room for a file of this size right now; try again later")


def _check_name_free(*, project: Project, spec: UploadSpec, now: datetime) -> None:
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


def _check_unfinished_limit(*, project: Project, now: datetime) -> None:
    if _unfinished(project=project, now=now).count() >= settings.UPLOADS_PER_PROJECT:
        raise errors.QuotaExceeded(
            f"project '{project.name}' has {settings.UPLOADS_PER_PROJECT} unfinished uploads, the most it may have; "
            "finish or delete one first"
        )


def _unfinished(*, project: Project, now: datetime) -> QuerySet[Upload]:
    """The project's uploads still under way: receiving (and not expired) or being checked."""
    receiving = Q(status=Upload.Status.RECEIVING, expires_at__gt=now)
    return Upload.objects.filter(receiving | Q(status=Upload.Status.PROCESSING), project=project)


def _create_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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


def _copy(stream: BinaryIO, fd: int, *, length: int, checksum: tus.Checksum | None) -> tuple[int, bool, bool]:
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


# Checking and converting


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


def _finish(upload: Upload, *, version: ApplianceVersion | None = None, error: str = "") -> Upload:
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


# Sweeping


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


__all__ = [
    "COPY_BYTES",
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

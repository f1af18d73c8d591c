"""Taking a stack home: one instance's disk as a qcow2 or raw image, or the whole stack as an OVA.

Asking queues a job on the downloads queue (``transfers.export_tasks``: it moves bytes for minutes,
and must not hold up launches on the builds queue) and returns its row (``transfers.models.Export``),
which says how far it got. The job reads the disks through libvirt's storage API
(``transfers.disk_copy``) while it holds the stack busy (``snapshotting``, as a snapshot or a
capture does: no other action changes its guests or disks meanwhile, and the watchdog settles it
should the worker die); a running stack's tiers are paused for just as long (every disk from one
moment, as after a power cut), then resumed in dependency order, and the stack is given back. The
conversion (and an OVA's compression) runs afterwards, with the guests going again. The finished file waits under
``EXPORT_DIR/<deployment>-<project>/<export id>/`` for ``EXPORT_KEEP_SECONDS``, downloadable
through a signed URL (``download_token``); the sweep then removes it (the URL answers 410 Gone).

Who: members (and owners) of the stack's project; a viewer is refused (403), anyone else finds
nothing (404). When: the stack settled (running, stopped or shelved), no other export of it under
way, and at most
``DOWNLOADS_PER_PROJECT`` exports of the project under way (they share the download workers).
How much: the project's ``max_export_gib`` holds the finished exports not yet expired plus what the
unfinished ones reserved, the disks' virtual size, claimed under the project's row lock so that
parallel requests cannot pass it together. Whatever fails leaves nothing on disk.
"""

from __future__ import annotations

import copy
import hmac
import logging
import math
import secrets
import shutil
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.crypto import salted_hmac

from portal import audit, errors
from portal.models import Project, Role
from portal.scoping import Account, User, require_role
from portal.task_queues import Queue, enqueue
from provisioning.drivers import DriverError
from provisioning.models import Instance, Stack, Status
from provisioning.services import stack_jobs
from provisioning.services.events import stack_event
from transfers.disk_copy import DiskCopy, DiskCopyError, LocalDisk, convert_disk, download_disk, stack_paused
from transfers.models import Export, JobStatus
from transfers.ova_writer import OvaTier, safe_name, write_ova

logger = logging.getLogger(__name__)

GIB = 1024**3
DISK_FORMATS = (Export.Format.QCOW2, Export.Format.RAW)
# Stacks whose disks stay put while they are read: settled, and with disks on one host.
EXPORTABLE = (Status.RUNNING, Status.STOPPED, Status.SHELVED)
UNFINISHED = (JobStatus.PENDING, JobStatus.RUNNING)
# While its disks are read the stack is busy, as during a snapshot (and a capture): nothing else may
# change its guests or disks, and the watchdog settles it should the worker die meanwhile.
HOLD = Status.SNAPSHOTTING
_PROGRESS_EVERY_SECONDS = 1.0
_SUFFIXES = {Export.Format.QCOW2: "qcow2", Export.Format.RAW: "raw", Export.Format.OVA: "ova"}
# What a failure nobody foresaw tells the person waiting; the exception itself is logged for operators.
UNEXPECTED_FAILURE = "the export failed unexpectedly; the portal's operators can find the reason in its log"
_TOKEN_SALT = "transfers.exports.download"  # noqa: S105 - a salt that names the purpose, not a secret


# --- asking ------------------------------------------------------------------------------------------


def export_instance(*, user: User, instance: Instance, fmt: str) -> Export:
    """Queue an export of ``instance``'s disk as one image in ``fmt`` (qcow2 or raw)."""
    if fmt not in DISK_FORMATS:
        choices = " or ".join(str(f) for f in DISK_FORMATS)
        raise errors.Invalid.for_field("format", f"a disk is exported as {choices}, not '{fmt}'")
    stack = instance.stack
    require_role(user, stack.project, Role.MEMBER)
    return _begin(user=user, stack=stack, instance=instance, fmt=Export.Format(fmt))


def export_stack(*, user: User, stack: Stack) -> Export:
    """Queue an export of every tier of ``stack`` as one OVA."""
    require_role(user, stack.project, Role.MEMBER)
    return _begin(user=user, stack=stack, instance=None, fmt=Export.Format.OVA)


def _begin(*, user: User, stack: Stack, instance: Instance | None, fmt: Export.Format) -> Export:
    with transaction.atomic():
        locked = Stack.objects.select_for_update().select_related("project").get(pk=stack.pk)
        _check_exportable(locked)
        instances = _live_instances(locked)
        if instance is not None:
            instances = [i for i in instances if i.pk == instance.pk]
            if not instances:
                raise errors.WrongState(f"{instance.name} is deleted: there is no disk to export")
        project = Project.objects.select_for_update().get(pk=locked.project_id)
        _check_unfinished(project, locked)
        reserve = sum(export_bytes_needed(i) for i in instances)
        _check_quota(project, reserve)
        export = Export.objects.create(
            project=project,
            created_by=user if isinstance(user, Account) else None,
            stack=locked,
            instance=instances[0] if instance is not None else None,
            source_name=instances[0].name if instance is not None else locked.name,
            format=fmt,
            reserved_bytes=reserve,
            bytes_total=reserve,
            download_token=secrets.token_hex(32),
        )
        audit.record(
            actor=user, action="export.create", target=export, project=project, format=fmt, source=export.source_name
        )
        transaction.on_commit(
            lambda: enqueue(
                "transfers.export_tasks.run_export", export.pk, queue=Queue.DOWNLOADS, task_name=f"export-{export.pk}"
            )
        )
    return export


def _check_exportable(stack: Stack) -> None:
    if stack.status not in EXPORTABLE or stack.moving_from_id is not None:
        allowed = ", ".join(str(s) for s in EXPORTABLE)
        raise errors.WrongState(f"the stack is {stack.status}: it can be exported when it is {allowed}")


def _live_instances(stack: Stack) -> list[Instance]:
    """The stack's live tiers in start order (what depends on nothing first)."""
    return [i for layer in stack_jobs.instance_layers(stack) for i in layer]


def export_bytes_needed(instance: Instance) -> int:
    """What an export reserves for the instance's disk: the disk the guest sees (its own size, or its
    image's when it asked for none), which no file made of it outgrows by more than its metadata."""
    version = instance.appliance_version
    image = version.image if version is not None else None
    image_bytes = image.virtual_size_bytes if image is not None else 0
    return max(instance.disk_gib * GIB, image_bytes)


def _check_unfinished(project: Project, stack: Stack) -> None:
    unfinished = Export.objects.filter(project=project, status__in=UNFINISHED)
    if unfinished.filter(stack=stack).exists():
        raise errors.WrongState("an export of this stack is under way: wait until it is done")
    limit = settings.DOWNLOADS_PER_PROJECT
    if unfinished.count() >= limit:
        raise errors.WrongState(
            f"project '{project.name}' has {limit} export(s) under way, as many as it may: wait until one is done"
        )


def export_bytes_used(project: Project) -> int:
    """What the project's exports hold: finished files not yet expired, and what unfinished ones reserved."""
    now = timezone.now()
    kept = Export.objects.filter(project=project, status=JobStatus.READY, expires_at__gt=now).exclude(path="")
    reserved = Export.objects.filter(project=project, status__in=UNFINISHED)
    return (kept.aggregate(total=Sum("size_bytes"))["total"] or 0) + (
        reserved.aggregate(total=Sum("reserved_bytes"))["total"] or 0
    )


def _check_quota(project: Project, wanted: int) -> None:
    limit = project.max_export_gib * GIB
    used = export_bytes_used(project)
    if used + wanted > limit:
        raise errors.QuotaExceeded(
            f"quota exceeded: project '{project.name}' may keep {project.max_export_gib} GiB of exports, "
            f"{_gib(used)} GiB are taken and this export needs up to {_gib(wanted)} GiB: delete an export "
            "or wait until one expires"
        )


def _gib(size: int) -> str:
    return f"{math.ceil(size / GIB * 10) / 10:g}"


# --- deleting -----------------------------------------------------------------------------------------


def export_delete(*, user: User, export: Export) -> None:
    """Remove a finished export, its file with it (its quota is free at once); one under way cannot be."""
    require_role(user, export.project, Role.MEMBER)
    with transaction.atomic():
        locked = Export.objects.select_for_update().filter(pk=export.pk).first()
        if locked is None:
            return
        if locked.status in UNFINISHED:
            raise errors.WrongState("the export is under way: wait until it is done")
        audit.record(actor=user, action="export.delete", target=locked, project=locked.project)
        locked.delete()
    _remove_folder(export)


# --- the job -------------------------------------------------------------------------------------------


def export_folder(export: Export) -> Path:
    """Where an export's file is written; the deployment's name in front, so portals sharing the folder
    never take each other's files for orphans."""
    return Path(settings.EXPORT_DIR) / f"{settings.DEPLOYMENT_NAME}-{export.project_id}" / str(export.pk)


def file_name(export: Export) -> str:
    return f"{safe_name(export.source_name)}.{_SUFFIXES[Export.Format(export.format)]}"


class _Progress:
    """Writes bytes_done/bytes_total to the row at most once a second (the last word always)."""

    def __init__(self, export: Export) -> None:
        self._export_id = export.pk
        self._last = 0.0

    def __call__(self, done: int, total: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < _PROGRESS_EVERY_SECONDS:
            return
        self._last = now
        Export.objects.filter(pk=self._export_id, status=JobStatus.RUNNING).update(
            bytes_done=done, bytes_total=max(done, total), updated_at=timezone.now()
        )


def export_job(*, export_id: int) -> str:
    """Copy the disk(s), write the file, and settle the export as ready or failed (with nothing left)."""
    now = timezone.now()
    claimed = Export.objects.filter(pk=export_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=now, updated_at=now
    )
    if not claimed:
        return "export is not waiting for this job"
    export = Export.objects.select_related("project", "stack", "instance").get(pk=export_id)
    folder = export_folder(export)
    try:
        written = _write(export, folder)
    except (DiskCopyError, DriverError, errors.PortalError) as exc:
        reason = getattr(exc, "message", None) or getattr(exc, "detail", None) or str(exc)
        return _fail(export, folder, str(reason))
    except Exception:
        logger.exception("export %s failed", export.pk)
        return _fail(export, folder, UNEXPECTED_FAILURE)
    finished = timezone.now()
    settled = Export.objects.filter(pk=export.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.READY,
        path=str(written.path),
        size_bytes=written.size_bytes,
        sha256=written.sha256,
        bytes_done=max(written.bytes_total, 1),
        bytes_total=max(written.bytes_total, 1),
        finished_at=finished,
        expires_at=finished + timedelta(seconds=settings.EXPORT_KEEP_SECONDS),
        updated_at=finished,
    )
    if not settled:  # ended meanwhile (the sweep took it for lost): its file must not stay
        _remove_folder(export)
        return "export ended meanwhile"
    return "ready"


@dataclass(frozen=True)
class _Written:
    path: Path
    size_bytes: int
    sha256: str
    bytes_total: int


def _write(export: Export, folder: Path) -> _Written:
    stack = export.stack
    if stack is None or (export.format != Export.Format.OVA and export.instance is None):
        raise DiskCopyError("what this export was of has been deleted")
    folder.mkdir(parents=True, exist_ok=True)
    work = folder / ".work"
    work.mkdir()
    progress = _Progress(export)
    stack, instances, disks, tally = _read_disks(export, stack, work, progress)
    target = folder / file_name(export)
    if export.format == Export.Format.OVA:
        written = _write_ova(stack, instances, disks, work, target, tally)
    else:
        one = convert_disk(disks[0], target, fmt=export.format, progress=tally.step(len(instances)))
        written = _Written(path=one.path, size_bytes=one.size_bytes, sha256=one.sha256, bytes_total=0)
    shutil.rmtree(work)
    return _Written(path=written.path, size_bytes=written.size_bytes, sha256=written.sha256, bytes_total=tally.total())


def _read_disks(
    export: Export, stack: Stack, work: Path, progress: _Progress
) -> tuple[Stack, list[Instance], list[LocalDisk], _Tally]:
    """Download the disks, holding the stack for as long: no other action (a shut-down, a snapshot, a
    capture) runs meanwhile, and a running stack's tiers are paused together, then resumed."""
    with transaction.atomic():
        locked = Stack.objects.select_for_update().select_related("project").get(pk=stack.pk)
        _check_exportable(locked)
        locked.status_before, locked.status = locked.status, HOLD
        locked.save(update_fields=["status", "status_before", "updated_at"])
        stack_event(locked, f"export of {export.source_name}: reading the disks")
    settled = Status(locked.status_before)
    try:
        instances = _live_instances(locked)
        if export.instance_id is not None:
            instances = [i for i in instances if i.pk == export.instance_id]
            if not instances:
                raise DiskCopyError(f"{export.source_name} was deleted before its disk could be read")
        tally = _Tally(progress, planned=[export_bytes_needed(i) for i in instances])
        # stack_paused goes by the status the stack is held from.
        as_it_was = copy.copy(locked)
        as_it_was.status = settled
        with stack_paused(as_it_was, instances=instances):
            disks = [download_disk(i, work, progress=tally.step(index)) for index, i in enumerate(instances)]
    except BaseException:
        stack_jobs.settle(
            locked,
            busy=HOLD,
            status=settled,
            message=f"export of {export.source_name}: the disks could not be read",
            is_error=True,
        )
        raise
    stack_jobs.settle(locked, busy=HOLD, status=settled, message=f"export of {export.source_name}: disks read")
    tally.downloaded([d.virtual_size_bytes for d in disks])
    return locked, instances, disks, tally


def _write_ova(
    stack: Stack, instances: list[Instance], disks: list[LocalDisk], work: Path, target: Path, tally: _Tally
) -> _Written:
    layers = {i.pk: number for number, layer in enumerate(stack_jobs.instance_layers(stack), start=1) for i in layer}
    tiers: list[OvaTier] = []
    for index, (instance, disk) in enumerate(zip(instances, disks, strict=True)):
        vmdk: DiskCopy = convert_disk(
            disk, work / f"{index}.vmdk", fmt="vmdk", progress=tally.step(len(instances) + index)
        )
        version = instance.appliance_version
        tiers.append(
            OvaTier(
                name=instance.name,
                vcpus=instance.vcpus,
                memory_mib=instance.memory_mib,
                arch=version.arch if version is not None else "x86_64",
                description=f"{version.appliance.title} {version.version}" if version is not None else "",
                disk_path=vmdk.path,
                disk_sha256=vmdk.sha256,
                disk_capacity_bytes=vmdk.virtual_size_bytes,
                start_layer=layers.get(instance.pk, len(layers) + 1),
            )
        )
    network = stack.network.name if hasattr(stack, "network") else f"{stack.name}-network"
    ova = write_ova(target, stack_name=stack.name, network=network, tiers=tiers)
    return _Written(path=ova.path, size_bytes=ova.size_bytes, sha256=ova.sha256, bytes_total=0)


class _Tally:
    """One running count over every step of an export: each disk's download, then each conversion.

    A step's total is planned (the disk's size) until the step itself says what it is.
    """

    def __init__(self, progress: _Progress, *, planned: list[int]) -> None:
        self._progress = progress
        # Downloads first (planned as the disks' sizes, at most), then one conversion per disk.
        self._totals = [*planned, *planned]
        self._done = [0] * len(self._totals)

    def step(self, index: int) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self._totals[index], self._done[index] = total, done
            self._progress(sum(self._done), self.total())

        return report

    def downloaded(self, sizes: list[int]) -> None:
        """The downloads are done: the conversions' totals are the disks' real sizes."""
        for offset, size in enumerate(sizes):
            self._totals[len(sizes) + offset] = size
        self._progress(sum(self._done), self.total(), force=True)

    def total(self) -> int:
        return sum(self._totals)


def _fail(export: Export, folder: Path, reason: str) -> str:
    _remove_folder(export, folder)
    now = timezone.now()
    Export.objects.filter(pk=export.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, error=reason[:2000], path="", finished_at=now, updated_at=now
    )
    return "failed"


def _remove_folder(export: Export, folder: Path | None = None) -> None:
    target = folder or export_folder(export)
    shutil.rmtree(target, ignore_errors=True)
    with suppress(OSError):
        target.parent.rmdir()  # the project's folder, once it holds no other export


# --- downloading ---------------------------------------------------------------------------------------


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


# --- the sweep -------------------------------------------------------------------------------------------


def sweep_exports() -> int:
    """Remove expired exports' files (their rows stay, answering 410), end exports whose worker died,
    and remove folders no export row owns; the number of exports ended or expired."""
    now = timezone.now()
    count = 0
    expired = Export.objects.filter(status=JobStatus.READY, expires_at__lte=now).exclude(path="")
    for export in expired.iterator():
        _remove_folder(export)
        count += Export.objects.filter(pk=export.pk).update(path="", updated_at=now)
    # A job makes progress at least every second while it copies; one silent this long lost its worker.
    lost_before = now - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS)
    lost = Export.objects.filter(status__in=UNFINISHED).filter(
        Q(updated_at__lt=lost_before) | Q(started_at__isnull=True, created_at__lt=lost_before)
    )
    for export in lost.iterator():
        _remove_folder(export)
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

"""The export job: read the disks while the stack is held (paused, if it runs), convert them into the
file asked for (one image, or an OVA of every tier), and settle the export as ready or failed, leaving
nothing on disk when it fails."""

from __future__ import annotations

import copy
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import errors
from provisioning.drivers import DriverError
from provisioning.models import Instance, Stack, Status
from provisioning.services import stack_jobs
from provisioning.services.events import stack_event
from transfers.disk_copy import DiskCopy, DiskCopyError, LocalDisk, convert_disk, download_disk, stack_paused
from transfers.export_admission import check_exportable, export_bytes_needed, live_instances
from transfers.export_files import export_folder, file_name, remove_folder
from transfers.models import Export, JobStatus
from transfers.ova_writer import OvaTier, write_ova

logger = logging.getLogger(__name__)

# While its disks are read the stack is busy, as during a snapshot (and a capture): nothing else may
# change its guests or disks, and the watchdog settles it should the worker die meanwhile.
HOLD = Status.SNAPSHOTTING
_PROGRESS_EVERY_SECONDS = 1.0
# What a failure nobody foresaw tells the person waiting; the exception itself is logged for operators.
UNEXPECTED_FAILURE = "the export failed unexpectedly; the portal's operators can find the reason in its log"


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
        remove_folder(export)
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
        check_exportable(locked)
        locked.status_before, locked.status = locked.status, HOLD
        locked.save(update_fields=["status", "status_before", "updated_at"])
        stack_event(locked, f"export of {export.source_name}: reading the disks", actor=export.created_by)
    settled = Status(locked.status_before)
    try:
        instances = live_instances(locked)
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
            actor=export.created_by,
        )
        raise
    stack_jobs.settle(
        locked,
        busy=HOLD,
        status=settled,
        message=f"export of {export.source_name}: disks read",
        actor=export.created_by,
    )
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
    remove_folder(export, folder)
    now = timezone.now()
    Export.objects.filter(pk=export.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, error=reason[:2000], path="", finished_at=now, updated_at=now
    )
    return "failed"


__all__ = ["HOLD", "UNEXPECTED_FAILURE", "export_job"]

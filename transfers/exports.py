"""Taking a stack home: one instance's disk as a qcow2 or raw image, or the whole stack as an OVA.

Asking queues a job on the downloads queue (``transfers.export_tasks``: it moves bytes for minutes,
and must not hold up launches on the builds queue) and returns its row (``transfers.models.Export``),
which says how far it got. The job (``transfers.export_job``) reads the disks through libvirt's storage API
(``transfers.disk_copy``) while it holds the stack busy (``snapshotting``, as a snapshot or a
capture does: no other action changes its guests or disks meanwhile, and the watchdog settles it
should the worker die); a running stack's tiers are paused for just as long (every disk from one
moment, as after a power cut), then resumed in dependency order, and the stack is given back. The
conversion (and an OVA's compression) runs afterwards, with the guests going again. The finished file waits under
``EXPORT_DIR/<deployment>-<project>/<export id>/`` for ``EXPORT_KEEP_SECONDS``, downloadable
through a signed URL (``download_token``, ``transfers.export_downloads``); the sweep
(``transfers.export_sweep``) then removes it (the URL answers 410 Gone).

Who: members (and owners) of the stack's project; a viewer is refused (403), anyone else finds
nothing (404). When: the stack settled (running, stopped or shelved), no other export of it under
way, and at most
``DOWNLOADS_PER_PROJECT`` exports of the project under way (they share the download workers).
How much: the project's ``max_export_gib`` holds the finished exports not yet expired plus what the
unfinished ones reserved, the disks' virtual size, claimed under the project's row lock so that
parallel requests cannot pass it together (``transfers.export_admission``). Whatever fails leaves
nothing on disk.

This module asks for and deletes exports; the public names of the modules above are importable from
here as well.
"""

from __future__ import annotations

import secrets

from django.db import transaction

from portal import audit, errors
from portal.models import Project, Role
from portal.scoping import Account, User, require_role
from portal.task_queues import Queue, enqueue
from provisioning.models import Instance, Stack
from transfers.export_admission import (
    EXPORTABLE,
    GIB,
    UNFINISHED,
    check_exportable,
    check_quota,
    check_unfinished,
    export_bytes_needed,
    export_bytes_used,
    live_instances,
)
from transfers.export_downloads import Gone, download_secret, downloadable_file, is_expired, secret_matches
from transfers.export_files import export_folder, file_name, remove_folder
from transfers.export_job import HOLD, UNEXPECTED_FAILURE, export_job
from transfers.export_sweep import sweep_exports
from transfers.models import Export

DISK_FORMATS = (Export.Format.QCOW2, Export.Format.RAW)


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
        check_exportable(locked)
        instances = live_instances(locked)
        if instance is not None:
            instances = [i for i in instances if i.pk == instance.pk]
            if not instances:
                raise errors.WrongState(f"{instance.name} is deleted: there is no disk to export")
        project = Project.objects.select_for_update().get(pk=locked.project_id)
        check_unfinished(project, locked)
        reserve = sum(export_bytes_needed(i) for i in instances)
        check_quota(project, reserve)
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
    remove_folder(export)


__all__ = [
    "DISK_FORMATS",
    "EXPORTABLE",
    "GIB",
    "HOLD",
    "UNEXPECTED_FAILURE",
    "UNFINISHED",
    "Gone",
    "download_secret",
    "downloadable_file",
    "export_bytes_needed",
    "export_bytes_used",
    "export_delete",
    "export_folder",
    "export_instance",
    "export_job",
    "export_stack",
    "file_name",
    "is_expired",
    "secret_matches",
    "sweep_exports",
]

"""Where an export's file is written and what it is called, and removing it."""

from __future__ import annotations

import shutil
from contextlib import suppress
from pathlib import Path

from django.conf import settings

from transfers.models import Export
from transfers.ova_writer import safe_name

_SUFFIXES = {Export.Format.QCOW2: "qcow2", Export.Format.RAW: "raw", Export.Format.OVA: "ova"}


def export_folder(export: Export) -> Path:
    """Where an export's file is written; the deployment's name in front, so portals sharing the folder
    never take each other's files for orphans."""
    return Path(settings.EXPORT_DIR) / f"{settings.DEPLOYMENT_NAME}-{export.project_id}" / str(export.pk)


def file_name(export: Export) -> str:
    return f"{safe_name(export.source_name)}.{_SUFFIXES[Export.Format(export.format)]}"


def remove_folder(export: Export, folder: Path | None = None) -> None:
    target = folder or export_folder(export)
    shutil.rmtree(target, ignore_errors=True)
    with suppress(OSError):
        target.parent.rmdir()  # the project's folder, once it holds no other export


__all__ = ["export_folder", "file_name", "remove_folder"]

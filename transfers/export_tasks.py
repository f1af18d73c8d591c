"""django-q2 entry points of exports: thin, they call ``transfers.export_job`` and ``transfers.export_sweep``."""

from __future__ import annotations

from transfers import export_job, export_sweep


def run_export(export_id: int) -> str:
    return export_job.export_job(export_id=export_id)


def sweep_exports() -> int:
    return export_sweep.sweep_exports()

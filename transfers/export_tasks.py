"""django-q2 entry points of exports: thin, they call ``transfers.exports``."""

from __future__ import annotations

from transfers import exports


def run_export(export_id: int) -> str:
    return exports.export_job(export_id=export_id)


def sweep_exports() -> int:
    return exports.sweep_exports()

"""Running a data migration's step inside a test.

Rows a migration writes (schedules) are not read from the migrated database: a transactional test
earlier on the same worker flushes every table, those rows included. A test runs the step itself.
"""

from __future__ import annotations

from importlib import import_module

from django.apps import apps


def run_data_migration(module: str) -> None:
    """Run the RunPython steps of ``module`` (e.g. "transfers.migrations.0002_sweep_uploads_schedule")."""
    for operation in import_module(module).Migration.operations:
        operation.code(apps, None)

"""django-q2 entry points for moving stacks between hosts: load nothing, call the service."""

from __future__ import annotations

from provisioning.services import migration


def migrate_stack(stack_id: int, operation_id: int) -> str:
    moved = migration.run_stack_migration(stack_id=stack_id, operation_id=operation_id)
    return "moved" if moved else "not moved"

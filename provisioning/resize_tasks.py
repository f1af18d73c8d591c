"""The django-q2 entry point of a tier's resize (queued by ``services.resize.stack_resize``)."""

from __future__ import annotations

from provisioning.services import resize


def resize_stack(stack_id: int, operation_id: int, before: dict[str, list[int]]) -> str:
    return resize.resize_job(stack_id=stack_id, operation_id=operation_id, before=before)

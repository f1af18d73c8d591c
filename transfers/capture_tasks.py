"""django-q2 entry points for captures: thin, the work is in ``transfers.capture``."""

from __future__ import annotations

from transfers import capture


def capture_stack(stack_id: int, capture_id: int) -> str:
    """Copy the stack's disks into the project's own catalog and make its template (queued by ``capture_create``)."""
    return capture.capture_job(stack_id=stack_id, capture_id=capture_id)


def captures_watchdog() -> int:
    """End the captures whose worker died; run it on the control cluster's schedule, beside the stacks' watchdog."""
    return capture.captures_watchdog()

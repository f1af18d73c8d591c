"""What an instance's (or a tier's) status reads as on a page: never livelier than its stack's.

An instance row keeps the status it last had while its stack is torn down around it (the worker
marks the instances deleted one by one, and a stack deleted before this rule kept "running"
instances), so a page that showed the instance's own word would call a deleted stack's tiers Running.
"""

from __future__ import annotations

from provisioning.models import Status


def status_within_stack(status: str, stack_status: str) -> Status:
    """``status`` (an instance's, or a tier's summary of them) as seen through its stack's ``stack_status``."""
    if stack_status == Status.DELETED:
        return Status.DELETED
    if stack_status == Status.DELETING and status != Status.DELETED:
        return Status.DELETING
    return Status(status)

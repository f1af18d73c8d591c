"""Template filters for showing parts of a stack in agreement with the stack's own status."""

from __future__ import annotations

from django import template

from provisioning.models import Status
from provisioning.shown_status import status_within_stack

register = template.Library()


@register.filter
def within_stack(status: str, stack_status: str) -> Status:
    """``{{ instance.status|within_stack:stack.status }}``: a deleted stack's instances read Deleted."""
    return status_within_stack(status, stack_status)

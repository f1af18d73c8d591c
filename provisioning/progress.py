"""Telling open stack pages that something changed, across processes, through the channel layer.

Workers record progress in the database (StackEvent) and then call ``announce_stack_change``;
every browser watching that stack gets a nudge over its websocket and re-reads the status.
Stacks lists are nudged too, through a group per project (``project_stacks_group``): the list
socket joins the groups of the projects its user may see. With Redis (REDIS_URL) this crosses
from the worker process to daphne; with the in-memory layer it only reaches consumers in the
same process, and pages fall back to polling.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import DatabaseError, transaction

from provisioning.models import Stack

logger = logging.getLogger(__name__)

# The handler name the consumers define (``stack_changed``), in the layer's dotted form.
STACK_CHANGED = "stack.changed"


def stack_group(stack_id: int) -> str:
    return f"stack-{stack_id}"


def project_stacks_group(project_id: int) -> str:
    """Watchers of any stack of one project: the stacks lists of the people who may see it."""
    return f"project-{project_id}-stacks"


def announce_stack_change(stack_id: int) -> None:
    """After the current transaction commits, nudge the stack's watchers. Never fails the caller."""
    transaction.on_commit(lambda: _send(stack_id))


def _send(stack_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": STACK_CHANGED, "stack": stack_id}
    groups = [stack_group(stack_id)]
    project_id = _project_of(stack_id)
    if project_id is not None:
        groups.append(project_stacks_group(project_id))
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception as exc:
            # A missing nudge only delays a page until its next poll; provisioning must go on.
            logger.warning("could not announce change of stack %s to %s: %s", stack_id, group, exc)


def _project_of(stack_id: int) -> int | None:
    """The stack's project, read after the commit (callers such as the lease sweep hold only an id)."""
    try:
        return Stack.objects.filter(pk=stack_id).values_list("project_id", flat=True).first()
    except DatabaseError as exc:
        # The stack page's own group is still told; only the lists wait for their next poll.
        logger.warning("could not read the project of stack %s: %s", stack_id, exc)
        return None

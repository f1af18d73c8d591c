"""Telling open stack pages that something changed, across processes, through the channel layer.

Workers record progress in the database (StackEvent) and then call ``announce_stack_change``;
every browser watching that stack gets a nudge over its websocket and re-reads the status.
With Redis (REDIS_URL) this crosses from the worker process to daphne; with the in-memory
layer it only reaches consumers in the same process, and pages fall back to polling.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def stack_group(stack_id: int) -> str:
    return f"stack-{stack_id}"


def announce_stack_change(stack_id: int) -> None:
    """After the current transaction commits, nudge the stack's watchers. Never fails the caller."""
    transaction.on_commit(lambda: _send(stack_id))


def _send(stack_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(stack_group(stack_id), {"type": "stack.changed", "stack": stack_id})
    except Exception as exc:
        # A missing nudge only delays a page until its next poll; provisioning must go on.
        logger.warning("could not announce change of stack %s: %s", stack_id, exc)

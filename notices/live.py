"""Telling a person's open pages that their notifications changed, through the channel layer.

Each signed-in page joins its user's group (``user_group``) through ``notices.consumers``; the
message carries nothing but "changed", and the socket answers with the count it reads itself.
Sent after the commit, so a rolled-back notification is never announced; never fails the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# The handler name the consumer defines (``notices_changed``), in the layer's dotted form.
NOTICES_CHANGED = "notices.changed"


def user_group(user_id: int) -> str:
    return f"notices-user-{user_id}"


def announce_notices_changed(user_ids: Iterable[int]) -> None:
    """After the current transaction commits, nudge the open pages of these users."""
    ids = sorted(set(user_ids))
    if ids:
        transaction.on_commit(lambda: _send(ids))


def _send(user_ids: list[int]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for user_id in user_ids:
        try:
            async_to_sync(layer.group_send)(user_group(user_id), {"type": NOTICES_CHANGED})
        except Exception as exc:
            # A missing nudge only delays a badge until its next poll; the notification is stored.
            logger.warning("could not announce new notifications to user %s: %s", user_id, exc)

"""Progress lines on a stack: recorded for the stack page and announced to its watchers."""

from __future__ import annotations

from datetime import datetime

from portal.scoping import Account, User
from provisioning.models import Stack, StackEvent
from provisioning.progress import announce_stack_change


def stack_event(
    stack: Stack,
    message: str,
    *,
    is_error: bool = False,
    moment: datetime | None = None,
    actor: User | None = None,
) -> None:
    """Record a line of progress; every status change comes with one, so watchers are nudged here.

    A moment the line speaks of goes in ``moment`` (rendered after the message in the reader's zone),
    never into the text. The person who asked goes in ``actor`` (None: the portal on its own).
    """
    person = actor if isinstance(actor, Account) else None  # an anonymous caller names nobody
    StackEvent.objects.create(stack=stack, message=message[:500], is_error=is_error, moment=moment, actor=person)
    announce_stack_change(stack.pk)

"""Progress lines on a stack: recorded for the stack page and announced to its watchers."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser

from provisioning.models import Stack, StackEvent
from provisioning.progress import announce_stack_change


def stack_event(
    stack: Stack,
    message: str,
    *,
    is_error: bool = False,
    moment: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> None:
    """Record a line of progress; every status change comes with one, so watchers are nudged here.

    A moment the line speaks of goes in ``moment`` (rendered after the message in the reader's zone),
    never into the text. The person who asked goes in ``actor`` (None: the portal on its own).
    """
    StackEvent.objects.create(stack=stack, message=message[:500], is_error=is_error, moment=moment, actor=actor)
    announce_stack_change(stack.pk)

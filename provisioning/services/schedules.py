"""Weekly schedules: a stack is shelved when its schedule says down and unshelved when it says up.

The portal acts at the schedule's changes, not in between: a stack someone unshelves by hand in
the evening stays up until the next "down" moment, and setting a schedule does nothing until its
next change (the page says when that is). Each sweep records the state the schedule wanted; the
first one after a schedule is set only records it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal import audit, errors
from portal.models import Role
from portal.scoping import User, require_role
from provisioning.models import Stack, Status
from provisioning.services.events import stack_event
from provisioning.services.shelving import stack_shelve, stack_unshelve
from provisioning.stack_schedules import parse_schedule

logger = logging.getLogger(__name__)

UP, DOWN = "up", "down"
SCHEDULED = (Status.RUNNING, Status.STOPPED, Status.SHELVED)


def stack_schedule_set(*, user: User, stack: Stack, document: dict | None) -> Stack:
    """Set (or, with None, remove) the stack's weekly schedule."""
    require_role(user, stack.project, Role.MEMBER)
    if document is not None:
        parse_schedule(document)  # refuses a bad one, naming every problem
    with transaction.atomic():
        locked = Stack.objects.select_for_update().get(pk=stack.pk)
        if locked.status in (Status.DELETING, Status.DELETED):
            raise errors.WrongState(f"stack is {locked.status}")
        locked.schedule, locked.schedule_state = document, ""
        locked.save(update_fields=["schedule", "schedule_state", "updated_at"])
        stack_event(locked, "schedule set" if document is not None else "schedule removed", actor=user)
        audit.record(actor=user, action="stack.schedule", target=locked, project=locked.project, schedule=document)
    return locked


def schedules_apply(*, now: datetime | None = None) -> int:
    """Shelve or unshelve every scheduled stack whose schedule changed since the last sweep; return how many."""
    now = now or timezone.now()
    acted = 0
    for stack in Stack.objects.filter(schedule__isnull=False, status__in=SCHEDULED).select_related("project"):
        wanted = UP if parse_schedule(stack.schedule).wants_up(now) else DOWN
        if stack.schedule_state == wanted:
            continue
        first_look = stack.schedule_state == ""
        Stack.objects.filter(pk=stack.pk).update(schedule_state=wanted)
        if first_look:
            continue
        try:
            if wanted == UP and stack.status == Status.SHELVED:
                stack_unshelve(user=None, stack=stack)
                acted += 1
            elif wanted == DOWN and stack.status in (Status.RUNNING, Status.STOPPED):
                stack_shelve(user=None, stack=stack, reason="its schedule says down")
                acted += 1
        except errors.PortalError as exc:
            # No room or no quota now: said on the stack; the next change tries again.
            stack_event(
                stack,
                f"the schedule could not {'unshelve' if wanted == UP else 'shelve'} it: {exc.detail}",
                is_error=True,
            )
            logger.info("stack %s: schedule %s refused: %s", stack.pk, wanted, exc.detail)
    return acted

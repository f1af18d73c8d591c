"""What provisioning tells the rest of the portal about a stack's life, without knowing who listens.

``stack_life_event`` is sent (``stack=``, ``event=``, ``moment=``) inside the transaction that makes
the event true: "lease.ended" when the portal acts on a lease that ran out, "stack.shelved" once a
stack is shelved, "stack.deleted" once it is gone. The notices app turns it into notifications,
mail and webhook deliveries (which wait for the commit).
"""

from __future__ import annotations

from datetime import datetime

from django.dispatch import Signal

from provisioning.models import Stack

stack_life_event = Signal()


def tell(stack: Stack, event: str, *, moment: datetime | None = None) -> None:
    stack_life_event.send(sender=Stack, stack=stack, event=event, moment=moment)

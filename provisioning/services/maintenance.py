"""Maintenance of a host: drained, evacuated, then marked so that its libvirtd may be stopped.

Entering maintenance is one request: the host is drained (no new stack lands on it), then
evacuated (``services.evacuation``), and once no running stack is left on it, it is marked
``maintenance`` with the moment. From then on a host that does not answer is not a failure: its
refresh records no health problem, the reconciler and the watchdog leave it be, and the Hosts page
says "in maintenance" rather than "unreachable". Stopped and shelved stacks keep their disks on it
and come back with it.

Undraining the host (``services.hosts.host_undrain``) ends maintenance and reads the host again.
A host in maintenance is always draining, so placement never chooses it.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from portal import audit, errors
from portal.scoping import Account, User
from provisioning.models import Host, Operation
from provisioning.services.evacuation import Outcome, begin_evacuation, require_operator
from provisioning.services.hosts import host_drain

logger = logging.getLogger(__name__)


def begin_maintenance(*, user: User, host: Host) -> Operation:
    """Drain ``host`` and queue its evacuation, after which it enters maintenance; the operation says how it goes.

    Refused (``WrongState``) when it is in maintenance already or is being evacuated.
    """
    require_operator(user)
    host.refresh_from_db()
    if host.maintenance:
        raise errors.WrongState(f"{host.name} is in maintenance already")
    host_drain(user=user, host=host)
    return begin_evacuation(user=user, host=host, maintenance=True)


def after_evacuation(*, host: Host, outcome: Outcome, detail: str, user: Account | None) -> str:
    """The evacuation's last step when asked for maintenance: enter it if no running stack is left.

    Returns the evacuation's detail with what became of the maintenance.
    """
    still = len(outcome.running_left)
    if still:
        return f"{detail}; {host.name} is not in maintenance: {still} running stack{'' if still == 1 else 's'} left"
    if not enter_maintenance(host=host, user=user):
        return f"{detail}; {host.name} was undrained meanwhile, so it is not in maintenance"
    return f"{detail}; {host.name} is in maintenance: its libvirtd may be stopped"


def enter_maintenance(*, host: Host, user: Account | None) -> bool:
    """Mark a draining ``host`` in maintenance; False if it is no longer draining (undrained meanwhile)."""
    with transaction.atomic():
        now = timezone.now()
        marked = Host.objects.filter(pk=host.pk, draining=True, maintenance=False).update(
            maintenance=True, maintenance_since=now
        )
        if marked:
            host.maintenance, host.maintenance_since = True, now
            audit.record(actor=user, action="host.maintenance", target=host)
    if marked:
        logger.info("host %s is in maintenance", host.name)
    return bool(marked)


__all__ = ["after_evacuation", "begin_maintenance", "enter_maintenance"]

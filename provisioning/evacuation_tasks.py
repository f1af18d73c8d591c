"""django-q2 entry point of a host's evacuation (and of the maintenance it may lead to)."""

from __future__ import annotations

from provisioning.services import evacuation, maintenance


def evacuate_host(operation_id: int) -> str:
    state = evacuation.run_evacuation(operation_id=operation_id, then=maintenance.after_evacuation)
    return str(state) if state is not None else "operation already taken or gone"

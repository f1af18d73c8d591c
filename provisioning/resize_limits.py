"""How far a running instance may grow without a restart."""

from __future__ import annotations

from provisioning.models import Host, Instance


def vcpu_ceiling(*, instance: Instance, host: Host) -> int | None:
    """The most vCPUs ``instance``'s domain is defined to take live (None: just its own)."""
    return None

"""An instance's quality of service: its flavor's limits (copied at launch), under its host's ceilings."""

from __future__ import annotations

from provisioning.drivers.qos_types import DomainQos
from provisioning.models import Host, Instance


def domain_qos(*, instance: Instance, host: Host) -> DomainQos:
    """The limits to define ``instance``'s domain with on ``host``."""
    return DomainQos()

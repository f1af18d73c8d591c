"""How far a running instance may grow without a restart.

A domain is defined with room for more vCPUs than it starts with (``<vcpu current=N>MAX</vcpu>``),
so a resize can plug them in while the guest runs. The room is the host's physical CPUs (more
vCPUs than those only queue on them) and at most ``LIVE_VCPU_BOUND``: every possible vCPU costs
the guest a little at boot (ACPI tables, per-CPU kernel areas), whether or not it is ever plugged.
Memory gets no such room: growing it needs hot-plugged memory devices, so it grows at a restart.
"""

from __future__ import annotations

from provisioning.models import Host, Instance

LIVE_VCPU_BOUND = 16


def vcpu_ceiling(*, instance: Instance, host: Host) -> int | None:
    """The most vCPUs ``instance``'s domain is defined to take live (None: just its own).

    None for an instance pinned to dedicated CPUs (a vCPU plugged in later would run unpinned) and
    for a host whose CPUs are not known yet.
    """
    if instance.pinned_cpus or host.cpus <= 0:
        return None
    ceiling = min(host.cpus, LIVE_VCPU_BOUND)
    return ceiling if ceiling > instance.vcpus else None


def live_vcpu_room(*, instance: Instance, host: Host) -> int:
    """The most vCPUs the instance can be given while it runs, as a domain defined now would allow."""
    return vcpu_ceiling(instance=instance, host=host) or instance.vcpus

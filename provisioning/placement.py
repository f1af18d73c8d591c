"""Choosing a host for an instance and a free port to publish it on.

Both run inside the launch transaction on rows locked with SELECT ... FOR UPDATE, so two
launches can never take the last slot of a host or the same port.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Sum

from portal.errors import NoCapacity
from provisioning.demand import StackDemand
from provisioning.models import ACTIVE_STATUSES, Host, Instance, PublishedPort


@dataclass(frozen=True)
class HostLoad:
    host: Host
    vcpus: int
    memory_mib: int
    instances: int

    def fits(self, *, vcpus: int, memory_mib: int) -> bool:
        return (
            self.vcpus + vcpus <= self.host.vcpu_capacity
            and self.memory_mib + memory_mib <= self.host.memory_capacity_mib
        )


def host_loads(hosts: list[Host]) -> list[HostLoad]:
    totals = {
        row["host"]: row
        for row in Instance.objects.filter(host__in=hosts, status__in=ACTIVE_STATUSES)
        .values("host")
        .annotate(vcpus=Sum("vcpus"), memory=Sum("memory_mib"), count=Count("id"))
    }
    return [
        HostLoad(
            host=host,
            vcpus=totals.get(host.pk, {}).get("vcpus") or 0,
            memory_mib=totals.get(host.pk, {}).get("memory") or 0,
            instances=totals.get(host.pk, {}).get("count") or 0,
        )
        for host in hosts
    ]


def claim_host(demand: StackDemand) -> Host:
    """Choose a host for the whole stack and claim it; call inside the launch transaction.

    The claim holds until the transaction ends, so the instances written after it count against
    the host for every later launch.
    """
    hosts = list(Host.objects.select_for_update().filter(enabled=True, healthy=True).order_by("pk"))
    return choose_host(host_loads(hosts), vcpus=demand.vcpus, memory_mib=demand.memory_mib).host


def choose_host(loads: list[HostLoad], *, vcpus: int, memory_mib: int) -> HostLoad:
    """Spread: the fitting host with the most free memory left, so one host does not fill first."""
    fitting = [load for load in loads if load.fits(vcpus=vcpus, memory_mib=memory_mib)]
    if not fitting:
        if not loads:
            raise NoCapacity("no host is enabled and healthy; ask an operator to add or repair one")
        raise NoCapacity(f"no host has room for {vcpus} vCPU and {memory_mib} MiB right now")
    return max(fitting, key=lambda load: (load.host.memory_capacity_mib - load.memory_mib, -load.host.pk))


def _port_is_free_locally(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _ports_are_real_here(host: Host) -> bool:
    # Only a local libvirt URI (no host part) lets us probe the port on this machine, and only on a
    # host whose guests really bind their published ports (a simulated host's never do).
    _scheme, _, rest = host.uri.partition("://")
    return rest.startswith("/") and host.guests_bind_host_ports


def allocate_port(host: Host) -> int:
    """Lowest port in PUBLISH_PORT_RANGE not reserved on ``host`` (and, on a local host, not bound by anyone)."""
    reserved = set(PublishedPort.objects.filter(host=host).values_list("host_port", flat=True))
    check_locally = _ports_are_real_here(host)
    low, high = settings.PUBLISH_PORT_RANGE
    for port in range(low, high + 1):
        if port in reserved:
            continue
        if check_locally and not _port_is_free_locally(host.public_address, port):
            continue
        return port
    raise NoCapacity(f"host {host.name} has no free port left in {low}-{high}")

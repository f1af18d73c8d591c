"""Finding and removing what the portal made on a host but no longer accounts for.

A worker killed between ``define`` and recording the result, an operator deleting rows, a
teardown that lost its host: each can leave a domain or an overlay volume that nothing in
the database claims. Everything the portal makes carries its tags (domain metadata, overlay
volume names), so the reconciler can tell its own leftovers from anything else on the host.

Only what this deployment made is considered (domains whose metadata names DEPLOYMENT_NAME,
overlay volumes whose names match this deployment's pattern exactly, see ``provisioning.naming``).
Base images in the host's pool are removed only once no instance there needs them and no build
has used them for a while (``base_images.idle_base_volumes_remove``).
An instance row is written before its domain or volume exists, so a build in progress is
always claimed and never mistaken for an orphan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Q

from portal import audit
from provisioning import allocations, naming
from provisioning.drivers import DriverError, HostUnreachable, HypervisorDriver
from provisioning.models import Host, Instance, Operation, StackNetwork, Status
from provisioning.services import base_images
from provisioning.services.hosts import driver_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leftover:
    kind: str  # "domain", "volume", "network" or "base_volume" (an idle base image)
    name: str


@dataclass
class Reconciliation:
    host: Host
    removed: list[Leftover]
    failed: list[str]
    recounted: bool = False  # the host's allocation counters had drifted from its instances


def reconcile_host(*, host: Host) -> Reconciliation:
    """Remove this deployment's domains, volumes and networks on ``host`` that no live stack claims,
    and recount what placement has handed out on it (``allocations.recount``)."""
    result = Reconciliation(host=host, removed=[], failed=[], recounted=allocations.recount(host=host))
    try:
        with driver_for(host) as driver:
            for leftover in find_leftovers(driver=driver, host=host):
                _remove(driver, host, leftover, result)
            idle = base_images.idle_base_volumes_remove(driver=driver, host=host)
            result.removed.extend(Leftover("base_volume", name) for name in idle.removed)
            result.failed.extend(idle.failed)
    except HostUnreachable as exc:
        if host.maintenance:
            # Its libvirtd may be stopped for maintenance: nothing to reconcile until it is back.
            logger.info("host %s in maintenance not reconciled: %s", host.name, exc.message)
        else:
            result.failed.append(exc.message)
    except DriverError as exc:
        result.failed.append(exc.message)
    for leftover in result.removed:
        audit.record(actor=None, action=f"reconcile.remove_{leftover.kind}", target=host, name=leftover.name)
    return result


def find_leftovers(*, driver: HypervisorDriver, host: Host) -> list[Leftover]:
    # The host is listed before the claims are read: a build that defines its domain after the
    # listing is simply not seen, and one whose row exists is claimed. Read the other way round, a
    # domain defined in between would be listed without its claim and destroyed while it runs.
    domains = [domain.name for domain in driver.list_domains() if naming.is_ours(domain.tags)]
    in_pool = [volume.name for volume in driver.list_volumes(pool=host.storage_pool)]
    volumes = [name for name in in_pool if _is_instance_volume(name)]
    logs = [(name, tags) for name in in_pool if (tags := naming.parse_console_log_volume_name(name)) is not None]
    networks = [name for name in driver.list_networks() if naming.parse_network_name(name) is not None]

    # A stack moving away from the host still has its disks here until its move ends; one migrating
    # to it already has its disks, network and incoming domains here while its rows name the source.
    moving_here = Q(
        stack__status=Status.MIGRATING,
        stack__operations__target_host=host,
        stack__operations__status__in=[Operation.State.PENDING, Operation.State.RUNNING],
    )
    here = Q(host=host) | Q(stack__moving_from=host) | moving_here
    claimed = Instance.objects.filter(here).exclude(status=Status.DELETED).distinct()
    claimed_domains = set(claimed.values_list("domain_name", flat=True))
    claimed_volumes = set(claimed.values_list("volume_name", flat=True)) | set(
        claimed.values_list("config_volume_name", flat=True)
    )
    claimed_networks = set(
        StackNetwork.objects.filter(
            Q(host=host) | Q(stack__moving_from=host) | moving_here, released_at__isnull=True
        ).values_list("name", flat=True)
    )
    # Networks last: they are removed after the domains attached to them.
    return (
        [Leftover("domain", name) for name in domains if name not in claimed_domains]
        + [Leftover("volume", name) for name in volumes if name not in claimed_volumes]
        # A serial console log belongs to its instance's disk: it stays while that disk is claimed.
        + [Leftover("volume", name) for name, tags in logs if naming.overlay_volume_name(tags) not in claimed_volumes]
        + [Leftover("network", name) for name in networks if name not in claimed_networks]
    )


def _is_instance_volume(name: str) -> bool:
    return naming.parse_overlay_volume_name(name) is not None or naming.parse_config_drive_volume_name(name) is not None


def _remove(driver: HypervisorDriver, host: Host, leftover: Leftover, result: Reconciliation) -> None:
    try:
        if leftover.kind == "domain":
            driver.destroy_domain(name=leftover.name)
        elif leftover.kind == "network":
            driver.delete_network(name=leftover.name)
        else:
            driver.delete_volume(pool=host.storage_pool, name=leftover.name)
    except DriverError as exc:
        result.failed.append(f"{leftover.kind} {leftover.name}: {exc.message}")
        return
    logger.warning("host %s: removed leftover %s %s", host.name, leftover.kind, leftover.name)
    result.removed.append(leftover)

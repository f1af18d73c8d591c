"""Finding and removing what the portal made on a host but no longer accounts for.

A worker killed between ``define`` and recording the result, an operator deleting rows, a
teardown that lost its host: each can leave a domain or an overlay volume that nothing in
the database claims. Everything the portal makes carries its tags (domain metadata, overlay
volume names), so the reconciler can tell its own leftovers from anything else on the host.

Only names this deployment made are considered (domains prefixed with DEPLOYMENT_NAME,
overlay volumes in the host's own pool); base images are the cache and are never touched.
An instance row is written before its domain or volume exists, so a build in progress is
always claimed and never mistaken for an orphan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from portal import audit
from provisioning.drivers import DriverError, HypervisorDriver
from provisioning.drivers.domain_xml import parse_volume_tags
from provisioning.hosts import driver_for
from provisioning.models import Host, Instance, Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leftover:
    kind: str  # "domain" or "volume"
    name: str


@dataclass
class Reconciliation:
    host: Host
    removed: list[Leftover]
    failed: list[str]


def reconcile_host(*, host: Host) -> Reconciliation:
    """Remove this deployment's domains and overlay volumes on ``host`` that no live instance claims."""
    result = Reconciliation(host=host, removed=[], failed=[])
    try:
        with driver_for(host) as driver:
            for leftover in find_leftovers(driver=driver, host=host):
                _remove(driver, host, leftover, result)
    except DriverError as exc:
        result.failed.append(exc.message)
    for leftover in result.removed:
        audit.record(actor=None, action=f"reconcile.remove_{leftover.kind}", target=host, name=leftover.name)
    return result


def find_leftovers(*, driver: HypervisorDriver, host: Host) -> list[Leftover]:
    claimed = Instance.objects.filter(host=host).exclude(status=Status.DELETED)
    claimed_domains = set(claimed.values_list("domain_name", flat=True))
    claimed_volumes = set(claimed.values_list("volume_name", flat=True))
    prefix = f"{settings.DEPLOYMENT_NAME}-"
    leftovers = [
        Leftover("domain", domain.name)
        for domain in driver.list_domains()
        if domain.name.startswith(prefix) and domain.name not in claimed_domains
    ]
    leftovers += [
        Leftover("volume", volume.name)
        for volume in driver.list_volumes(pool=host.storage_pool)
        if parse_volume_tags(volume.name) is not None and volume.name not in claimed_volumes
    ]
    return leftovers


def _remove(driver: HypervisorDriver, host: Host, leftover: Leftover, result: Reconciliation) -> None:
    try:
        if leftover.kind == "domain":
            driver.destroy_domain(name=leftover.name)
        else:
            driver.delete_volume(pool=host.storage_pool, name=leftover.name)
    except DriverError as exc:
        result.failed.append(f"{leftover.kind} {leftover.name}: {exc.message}")
        return
    logger.warning("host %s: removed leftover %s %s", host.name, leftover.kind, leftover.name)
    result.removed.append(leftover)

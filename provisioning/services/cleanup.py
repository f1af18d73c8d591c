"""Removing instances from their hosts: the one place that destroys domains and deletes overlays."""

from __future__ import annotations

from collections.abc import Iterable

from provisioning.drivers import DriverError
from provisioning.models import Instance
from provisioning.services.hosts import driver_for


def remove_instances(instances: Iterable[Instance]) -> list[str]:
    """Destroy domains and delete overlay volumes; return what could not be removed (empty when all went)."""
    problems: list[str] = []
    for instance in instances:
        if instance.host is None:
            continue
        try:
            with driver_for(instance.host) as driver:
                driver.destroy_domain(name=instance.domain_name)
                driver.delete_volume(pool=instance.host.storage_pool, name=instance.volume_name)
        except DriverError as exc:
            problems.append(f"{instance.name}: {exc.message}")
    return problems

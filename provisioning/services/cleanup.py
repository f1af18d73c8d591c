"""Removing what a stack made on its host: domains, overlays, config drives and its network.

The one place that deletes them, used by a failed build, a delete and lease expiry alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from provisioning.drivers import DriverError
from provisioning.models import Instance, Stack, StackNetwork
from provisioning.services.hosts import driver_for


def remove_instances(instances: Iterable[Instance]) -> list[str]:
    """Destroy domains and delete their volumes; return what could not be removed (empty when all went)."""
    problems: list[str] = []
    for instance in instances:
        if instance.host is None:
            continue
        try:
            with driver_for(instance.host) as driver:
                driver.destroy_domain(name=instance.domain_name)
                driver.delete_volume(pool=instance.host.storage_pool, name=instance.volume_name)
                if instance.config_volume_name:
                    driver.delete_volume(pool=instance.host.storage_pool, name=instance.config_volume_name)
        except DriverError as exc:
            problems.append(f"{instance.name}: {exc.message}")
    return problems


def remove_stack_network(stack: Stack) -> list[str]:
    """Delete the stack's network from its host (after its domains) and free its subnet."""
    network = StackNetwork.objects.filter(stack=stack, released_at__isnull=True).select_related("host").first()
    if network is None:
        return []
    try:
        with driver_for(network.host) as driver:
            driver.delete_network(name=network.name)
    except DriverError as exc:
        return [f"network {network.name}: {exc.message}"]
    StackNetwork.objects.filter(pk=network.pk).update(released_at=timezone.now())
    return []


def remove_stack_resources(stack: Stack, instances: Iterable[Instance]) -> list[str]:
    """Everything of the stack on its host; the network only once no domain is left on it."""
    problems = remove_instances(instances)
    return problems or remove_stack_network(stack)

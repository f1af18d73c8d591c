"""Removing what a stack made on its hosts: domains, overlays, config drives, console logs and its network.

The one place that deletes them, used by a failed build, a delete, the watchdog and lease expiry
alike. It opens one libvirt connection per host, not one per instance: on a remote host each is an
SSH or TLS handshake. Every removal is idempotent, so one that fails because the host did not
answer is tried again after a short pause (``retries.retrying``); a host that still does not answer
is left, with the rest of its instances, for the next attempt of whoever called.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from django.utils import timezone

from provisioning.consoles.backlog import delete_console_log
from provisioning.drivers import DriverError, HostUnreachable, HypervisorDriver
from provisioning.models import Host, Instance, Stack, StackNetwork
from provisioning.services.hosts import driver_for
from provisioning.services.retries import retrying


def remove_stack_resources(stack: Stack, instances: Iterable[Instance]) -> list[str]:
    """Everything of the stack on its hosts; return what could not be removed (empty when all went).

    The network goes last, and only once no domain is left that could still be attached to it.
    """
    network = StackNetwork.objects.filter(stack=stack, released_at__isnull=True).select_related("host").first()
    problems: list[str] = []
    for host, group in _by_host(instances, last=network.host if network else None):
        with driver_for(host) as driver:
            problems += _remove_instances(driver, host, group)
            if network is not None and host.pk == network.host_id and not problems:
                problems += _remove_network(driver, network)
    return problems


def _by_host(instances: Iterable[Instance], *, last: Host | None) -> list[tuple[Host, list[Instance]]]:
    groups: dict[int, tuple[Host, list[Instance]]] = {}
    for instance in instances:
        if instance.host is not None:
            groups.setdefault(instance.host.pk, (instance.host, []))[1].append(instance)
    if last is not None:
        groups[last.pk] = groups.pop(last.pk, (last, []))  # moved to the end
    return list(groups.values())


def _remove_instances(driver: HypervisorDriver, host: Host, group: list[Instance]) -> list[str]:
    problems: list[str] = []
    for index, instance in enumerate(group):
        try:
            retrying(partial(_remove_instance, driver, host, instance), what=f"removing {instance.name}")
        except HostUnreachable as exc:
            # Still no answer after the pauses: the host's other instances would only wait the same way.
            problems += [f"{left.name}: {exc.message}" for left in group[index:]]
            break
        except DriverError as exc:
            problems.append(f"{instance.name}: {exc.message}")
    return problems


def _remove_instance(driver: HypervisorDriver, host: Host, instance: Instance) -> None:
    driver.destroy_domain(name=instance.domain_name)
    driver.delete_volume(pool=host.storage_pool, name=instance.volume_name)
    if instance.config_volume_name:
        driver.delete_volume(pool=host.storage_pool, name=instance.config_volume_name)
    delete_console_log(driver=driver, host=host, instance=instance)


def _remove_network(driver: HypervisorDriver, network: StackNetwork) -> list[str]:
    """Delete the stack's network from its host and free its subnet."""
    try:
        retrying(partial(driver.delete_network, name=network.name), what=f"removing network {network.name}")
    except DriverError as exc:
        return [f"network {network.name}: {exc.message}"]
    StackNetwork.objects.filter(pk=network.pk).update(released_at=timezone.now())
    return []


__all__ = ["remove_stack_resources"]

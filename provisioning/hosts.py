"""Registering hosts and reading their capacity and health through the driver."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.scoping import User, is_operator
from provisioning.drivers import DriverError, HypervisorDriver, open_driver
from provisioning.models import Host

logger = logging.getLogger(__name__)


def driver_for(host: Host) -> HypervisorDriver:
    return open_driver(host.uri)


def host_register(
    *,
    user: User,
    name: str,
    uri: str,
    domain_type: str = Host.DomainType.KVM,
    storage_pool: str = "portal",
    storage_pool_path: str = "/var/lib/libvirt/images/portal",
    public_address: str = "127.0.0.1",
) -> Host:
    """Add a host after proving the portal can reach it; an unreachable URI adds nothing."""
    if not is_operator(user):
        raise PermissionDenied("only operators may register hosts")
    host = Host(
        name=name,
        uri=uri,
        domain_type=domain_type,
        storage_pool=storage_pool,
        storage_pool_path=storage_pool_path,
        public_address=public_address,
    )
    host.full_clean()
    host_probe(host=host)
    with transaction.atomic():
        host.save()
        audit.record(actor=user, action="host.register", target=host, uri=uri)
    return host


def host_probe(*, host: Host) -> None:
    """Connect to a host not yet saved and read it; refuse it with a readable reason if that fails."""
    try:
        _read_host(host)
    except DriverError as exc:
        raise ValidationError({"uri": f"cannot use host {host.uri}: {exc.message}"}) from None


def host_refresh(*, host: Host) -> Host:
    """Re-read capacity and health; a host that does not answer is marked unhealthy, not removed."""
    try:
        _read_host(host)
    except DriverError as exc:
        host.healthy = False
        host.health_error = exc.message
        logger.warning("host %s unhealthy: %s", host.name, exc.message)
    host.last_checked_at = timezone.now()
    host.save()
    return host


def _read_host(host: Host) -> None:
    with driver_for(host) as driver:
        info = driver.host_info()
        driver.ensure_dir_pool(name=host.storage_pool, path=host.storage_pool_path)
    host.cpus = info.cpus
    host.memory_mib = info.memory_mib
    host.free_memory_mib = info.free_memory_mib
    host.hypervisor = info.hypervisor
    host.libvirt_version = info.libvirt_version
    host.hostname = info.hostname
    host.healthy = True
    host.health_error = ""
    host.last_checked_at = timezone.now()

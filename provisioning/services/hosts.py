"""Registering, changing and repairing hosts, and reading their capacity and health through the driver.

Reading a host (``host_refresh``, run every few minutes) changes nothing on it. Setting it up, that
is defining, building and starting its storage pool, happens only when an operator acts: when the
host is registered, when its URI or pool changes, and when they ask for a repair (``host_repair``).
A periodic read that quietly re-created a pool would hide whatever removed it.

Errors shown on the host (``health_error``) or to the caller are the driver's messages, in the
portal's words; what libvirt said is in the log (see ``provisioning.drivers.base.DriverError``).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal import audit, errors
from portal.scoping import User, is_operator
from provisioning.drivers import DriverError, HostUnreachable, HypervisorDriver, NotFound, open_driver
from provisioning.drivers.base import PoolInfo
from provisioning.endpoints import check_endpoint_host
from provisioning.host_uris import check_uri
from provisioning.models import Host

logger = logging.getLogger(__name__)


@contextmanager
def driver_for(host: Host) -> Iterator[HypervisorDriver]:
    """A driver for ``host``, closed when the ``with`` block ends.

    The URI is checked again here, not only when it was saved: a row saved before the rules were
    tightened (or written by hand) must not make the portal run what the rules now refuse.
    """
    try:
        check_uri(host.uri)
    except errors.Invalid as exc:
        logger.error("host %s: not connecting to its URI: %s", host.name, exc.detail)
        raise HostUnreachable(f"the host's URI is refused: {exc.detail}", retryable=False) from None
    driver = open_driver(host.uri)
    try:
        yield driver
    finally:
        driver.close()


def _require_operator(user: User) -> None:
    if not is_operator(user):
        raise errors.PermissionDenied("only operators may register or change hosts")


def _check_settable(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(Host.SETTABLE_FIELDS)
    if unknown:
        raise errors.Invalid(f"hosts have no settable field {', '.join(sorted(unknown))}")


def _validated(host: Host) -> None:
    check_uri(host.uri)
    try:
        host.full_clean()
    except ValidationError as exc:
        raise errors.Invalid.from_django(exc) from None
    check_endpoint_host(host)


def host_register(*, user: User, name: str, uri: str, **fields: Any) -> Host:
    """Add a host after proving the portal can reach it; an unreachable URI adds nothing."""
    _require_operator(user)
    _check_settable(fields)
    host = Host(name=name, uri=uri, **fields)
    _validated(host)
    _apply(host, host_probe(host=host))
    with transaction.atomic():
        host.save()
        audit.record(actor=user, action="host.register", target=host, uri=uri)
    return host


def host_update(*, user: User, host: Host, **changes: Any) -> Host:
    """Change an operator-set field of a host; a changed URI or pool is connected to before it is saved."""
    _require_operator(user)
    _check_settable(changes)
    changed = {field: value for field, value in changes.items() if getattr(host, field) != value}
    if not changed:
        return host
    for field, value in changed.items():
        setattr(host, field, value)
    _validated(host)
    touched = list(changed)
    if {"uri", "storage_pool", "storage_pool_path"} & set(changed):
        _apply(host, host_probe(host=host))
        touched += list(Host.OBSERVED_FIELDS)
    with transaction.atomic():
        host.save(update_fields=touched)
        audit.record(actor=user, action="host.update", target=host, fields=sorted(changed))
    return host


def host_drain(*, user: User, host: Host) -> Host:
    """Stop placing new stacks on ``host``; the stacks it runs keep running until they end."""
    return _set_draining(user=user, host=host, draining=True)


def host_undrain(*, user: User, host: Host) -> Host:
    """Let placement put new stacks on a drained host again; one in maintenance leaves it and is read again."""
    _set_draining(user=user, host=host, draining=False)
    with transaction.atomic():
        ended = Host.objects.filter(pk=host.pk, maintenance=True).update(maintenance=False, maintenance_since=None)
        if ended:
            audit.record(actor=user, action="host.maintenance_end", target=host)
    host.maintenance, host.maintenance_since = False, None
    if ended:
        # Its libvirtd may have been stopped and started again: what it can take is read now, not at
        # the next periodic refresh, so placement may use it at once (or sees it is unhealthy).
        host_refresh(host=host)
    return host


def _set_draining(*, user: User, host: Host, draining: bool) -> Host:
    _require_operator(user)
    with transaction.atomic():
        # Only this one field is written, and only if it changes. The UPDATE waits for a launch that
        # is claiming the host right now (its row lock): once it returns, no new stack lands here.
        changed = Host.objects.filter(pk=host.pk).exclude(draining=draining).update(draining=draining)
        host.draining = draining
        if changed:
            audit.record(actor=user, action="host.drain" if draining else "host.undrain", target=host)
    return host


def host_probe(*, host: Host) -> dict[str, Any]:
    """Connect to a host, set its storage pool up, and read what the portal observes.

    For a host being registered or changed: one that cannot be used is refused with the reason.
    """
    try:
        return _observe(host, set_up=True)
    except DriverError as exc:
        raise errors.Invalid.for_field("uri", f"cannot use host {host.uri}: {exc.message}") from None


def host_refresh(*, host: Host) -> Host:
    """Re-read capacity and health, changing nothing on the host; one that does not answer is marked unhealthy.

    Only the observed fields are written: an operator's edit made during the (slow) read stays.
    """
    _save_observed(host, _observed_or_unhealthy(host, set_up=False))
    return host


def host_repair(*, user: User, host: Host) -> Host:
    """Set the host's storage pool up again (define, build, start, as at registration), then re-read it."""
    _require_operator(user)
    observed = _observed_or_unhealthy(host, set_up=True)
    _save_observed(host, observed)
    audit.record(actor=user, action="host.repair", target=host, healthy=observed["healthy"])
    return host


def _observed_or_unhealthy(host: Host, *, set_up: bool) -> dict[str, Any]:
    try:
        return _observe(host, set_up=set_up)
    except HostUnreachable as exc:
        if host.maintenance:
            # Its libvirtd may be stopped for maintenance: expected, so no health problem and no alarm.
            # It takes no stacks (it is draining) and is read again when it is undrained.
            logger.info("host %s in maintenance does not answer: %s", host.name, exc.message)
            return {"healthy": False, "health_error": "", "last_checked_at": timezone.now()}
        logger.warning("host %s unhealthy: %s", host.name, exc.message)
        return {"healthy": False, "health_error": exc.message, "last_checked_at": timezone.now()}
    except DriverError as exc:
        logger.warning("host %s unhealthy: %s", host.name, exc.message)
        return {"healthy": False, "health_error": exc.message, "last_checked_at": timezone.now()}


def _save_observed(host: Host, observed: dict[str, Any]) -> None:
    Host.objects.filter(pk=host.pk).update(**observed)
    _apply(host, observed)


def _apply(host: Host, observed: dict[str, Any]) -> None:
    for field, value in observed.items():
        setattr(host, field, value)


def _observe(host: Host, *, set_up: bool) -> dict[str, Any]:
    pool: PoolInfo | None
    with driver_for(host) as driver:
        info = driver.host_info()
        if set_up:
            pool = driver.ensure_dir_pool(name=host.storage_pool, path=host.storage_pool_path)
        else:
            try:
                pool = driver.pool_info(name=host.storage_pool)
            except NotFound:
                pool = None
    observed: dict[str, Any] = {
        "cpus": info.cpus,
        "memory_mib": info.memory_mib,
        "free_memory_mib": info.free_memory_mib,
        "hypervisor": info.hypervisor,
        "libvirt_version": info.libvirt_version,
        "hostname": info.hostname,
        "guests_bind_host_ports": info.capabilities.guests_bind_host_ports,
        "guest_arches": ",".join(info.guest_arches),
        "last_checked_at": timezone.now(),
    }
    if pool is not None:
        observed |= {"pool_capacity_bytes": pool.capacity_bytes, "pool_available_bytes": pool.available_bytes}
    problem = _pool_problem(host, pool)
    if problem:
        logger.warning("host %s unhealthy: %s", host.name, problem)
    return observed | {"healthy": not problem, "health_error": problem}


def _pool_problem(host: Host, pool: PoolInfo | None) -> str:
    """Why the host's pool cannot take volumes now, in words that say what fixes it; "" if it can."""
    name = host.storage_pool
    if pool is None:
        return f"storage pool '{name}' is missing; repair the host to set it up again"
    if posixpath.normpath(pool.path) != posixpath.normpath(host.storage_pool_path):
        return f"storage pool '{name}' is at '{pool.path}', not at '{host.storage_pool_path}'"
    if not pool.active:
        return f"storage pool '{name}' is stopped; repair the host to start it"
    return ""


__all__ = [
    "check_uri",
    "driver_for",
    "host_drain",
    "host_probe",
    "host_refresh",
    "host_register",
    "host_repair",
    "host_undrain",
    "host_update",
]

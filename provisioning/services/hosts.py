"""Registering and changing hosts, and reading their capacity and health through the driver."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal import audit, errors
from portal.scoping import User, is_operator
from provisioning.drivers import DriverError, HypervisorDriver, open_driver
from provisioning.models import Host

logger = logging.getLogger(__name__)


@contextmanager
def driver_for(host: Host) -> Iterator[HypervisorDriver]:
    """A driver for ``host``, closed when the ``with`` block ends."""
    driver = open_driver(host.uri)
    try:
        yield driver
    finally:
        driver.close()


def _require_operator(user: User) -> None:
    if not is_operator(user):
        raise errors.PermissionDenied("only operators may register or change hosts")


def check_uri(uri: str) -> None:
    """Refuse a libvirt URI the portal must not open: an unlisted transport, or one that runs a command.

    libvirt runs programs on the portal server for some URIs: ``qemu+ext`` runs ``command=``, and
    the ssh transports take ``command=`` as the ssh client to run. A registered host is only ever
    reached through the transports operators allow (``PORTAL_HOST_TRANSPORTS``).
    """
    parts = urlsplit(uri)
    allowed = settings.HOST_TRANSPORTS
    exact = uri in allowed  # entries such as "qemu:///system" allow that one URI
    if not exact and (not parts.scheme or "://" not in uri or parts.scheme not in allowed):
        scheme = parts.scheme or uri
        raise errors.Invalid.for_field(
            "uri", f"transport '{scheme}' is not allowed here (allowed: {', '.join(allowed)}; PORTAL_HOST_TRANSPORTS)"
        )
    if any(key.lower() == "command" for key, _value in parse_qsl(parts.query, keep_blank_values=True)):
        raise errors.Invalid.for_field("uri", "a host URI may not name a command to run (command=)")


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
    """Let placement put new stacks on a drained host again."""
    return _set_draining(user=user, host=host, draining=False)


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
    """Connect to a host and read what the portal observes; refuse it with a readable reason if that fails."""
    try:
        return _observe(host)
    except DriverError as exc:
        raise errors.Invalid.for_field("uri", f"cannot use host {host.uri}: {exc.message}") from None


def host_refresh(*, host: Host) -> Host:
    """Re-read capacity and health; a host that does not answer is marked unhealthy, not removed.

    Only the observed fields are written: an operator's edit made during the (slow) read stays.
    """
    try:
        observed = _observe(host)
    except DriverError as exc:
        logger.warning("host %s unhealthy: %s", host.name, exc.message)
        observed = {"healthy": False, "health_error": exc.message, "last_checked_at": timezone.now()}
    Host.objects.filter(pk=host.pk).update(**observed)
    _apply(host, observed)
    return host


def _apply(host: Host, observed: dict[str, Any]) -> None:
    for field, value in observed.items():
        setattr(host, field, value)


def _observe(host: Host) -> dict[str, Any]:
    with driver_for(host) as driver:
        info = driver.host_info()
        pool = driver.ensure_dir_pool(name=host.storage_pool, path=host.storage_pool_path)
    return {
        "cpus": info.cpus,
        "memory_mib": info.memory_mib,
        "free_memory_mib": info.free_memory_mib,
        "hypervisor": info.hypervisor,
        "libvirt_version": info.libvirt_version,
        "hostname": info.hostname,
        "guests_bind_host_ports": info.capabilities.guests_bind_host_ports,
        "guest_arches": ",".join(info.guest_arches),
        "pool_capacity_bytes": pool.capacity_bytes,
        "pool_available_bytes": pool.available_bytes,
        "healthy": True,
        "health_error": "",
        "last_checked_at": timezone.now(),
    }

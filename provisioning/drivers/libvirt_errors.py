"""Turning ``libvirtError`` into the driver's own errors, each saying whether a retry can help.

An error's message says, in the portal's words, what could not be done to which object, because a
stack's failure reason is read without the call that produced it. libvirt's own text goes only
into the error's ``detail`` and the log (with the host's URI): it can quote files of the machine
that produced it, and a failure reason is shown to the stack's project.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import libvirt

from provisioning.drivers.base import (
    DriverError,
    HostUnreachable,
    InvalidRequest,
    NotFound,
    PortUnavailable,
    Unsupported,
)

_NOT_FOUND_CODES = frozenset(
    {
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_NETWORK,
        libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
    }
)
_CONNECTION_CODES = frozenset({libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_RPC})
# Errors raised by our own end of the wire (socket, ssh, RPC framing). Errors that happened inside
# the daemon travel back with their original origin, so a system error from the storage driver
# (say, permission denied) is not mistaken for a lost connection.
_TRANSPORT_ORIGINS = frozenset(
    {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE, libvirt.VIR_FROM_SSH, libvirt.VIR_FROM_LIBSSH}
)
_TRANSPORT_CODES = frozenset({libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR})
_UNSUPPORTED_CODES = frozenset(
    {
        libvirt.VIR_ERR_NO_SUPPORT,
        libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
        libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
    }
)
# What a driver answers when it does not know a flag it was given; the caller may retry with fewer.
UNKNOWN_FLAG_CODES = frozenset(
    {libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED}
)
_TRANSIENT_CODES = frozenset(
    {libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_ERR_RESOURCE_BUSY, libvirt.VIR_ERR_AGENT_UNRESPONSIVE}
)
# A failed open is not worth retrying when the credentials or the URI itself are wrong.
_PERMANENT_OPEN_CODES = frozenset(
    {
        libvirt.VIR_ERR_AUTH_FAILED,
        libvirt.VIR_ERR_AUTH_CANCELLED,
        libvirt.VIR_ERR_AUTH_UNAVAILABLE,
        libvirt.VIR_ERR_XML_ERROR,
        libvirt.VIR_ERR_XML_DETAIL,
    }
)
# What a refusal means, in the portal's words; libvirt's own are only logged.
_REFUSAL_REASONS = {
    libvirt.VIR_ERR_DOM_EXIST: "it already exists",
    libvirt.VIR_ERR_STORAGE_VOL_EXIST: "it already exists",
    libvirt.VIR_ERR_NETWORK_EXIST: "it already exists",
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED: "the host does not support that configuration",
    libvirt.VIR_ERR_XML_ERROR: "the host found its definition invalid",
    libvirt.VIR_ERR_XML_DETAIL: "the host found its definition invalid",
    libvirt.VIR_ERR_OPERATION_INVALID: "it is not in a state that allows it",
    libvirt.VIR_ERR_ACCESS_DENIED: "the host denied access",
    libvirt.VIR_ERR_SNAPSHOT_REVERT_RISKY: "the snapshot's machine no longer matches the domain's",
}
# Some drivers report a taken name as a plain failure, told apart only by these words.
_ALREADY_EXISTS = "already exists"
# QEMU's words when a user-networking hostfwd cannot bind its host port; libvirt passes them
# through as an internal error with no code of their own.
_HOSTFWD_FAILED = "Could not set up host forwarding rule"
# libvirt shapes a NIC's <bandwidth> with tc; a kernel without the queueing disciplines it asks for
# (sfq, htb) refuses, and the guest cannot start with network limits on that host.
_SHAPING_UNAVAILABLE = "qdisc kind is unknown"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    """The objects a call is about, so that errors can name them."""

    domain: str | None = None
    pool: str | None = None
    volume: str | None = None
    network: str | None = None
    snapshot: str | None = None


NO_SUBJECT = Subject()


def libvirt_message(exc: libvirt.libvirtError) -> str:
    message: str | None = exc.get_error_message()
    return message or str(exc)


def has_code(exc: libvirt.libvirtError, *codes: int) -> bool:
    return exc.get_error_code() in codes


P = ParamSpec("P")
T = TypeVar("T")


def none_if_missing(code: int, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
    """``call(...)``, or ``None`` when it fails with ``code``: the object is missing, or went away meanwhile."""
    try:
        return call(*args, **kwargs)
    except libvirt.libvirtError as exc:
        if has_code(exc, code):
            return None
        raise


def _not_found_message(code: int | None, subject: Subject) -> str | None:
    if code == libvirt.VIR_ERR_NO_DOMAIN and subject.domain:
        return f"domain '{subject.domain}' not found"
    if code == libvirt.VIR_ERR_NO_STORAGE_POOL and subject.pool:
        return f"pool '{subject.pool}' not found"
    if code == libvirt.VIR_ERR_NO_STORAGE_VOL and subject.volume:
        where = f" in pool '{subject.pool}'" if subject.pool else ""
        return f"volume '{subject.volume}' not found{where}"
    if code == libvirt.VIR_ERR_NO_NETWORK and subject.network:
        return f"network '{subject.network}' not found"
    if code == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT and subject.snapshot:
        of = f" of domain '{subject.domain}'" if subject.domain else ""
        return f"snapshot '{subject.snapshot}'{of} not found"
    return None


def _is_connection_error(exc: libvirt.libvirtError) -> bool:
    code = exc.get_error_code()
    if code in _CONNECTION_CODES:
        return True
    return code in _TRANSPORT_CODES and exc.get_error_domain() in _TRANSPORT_ORIGINS


def translate_error(exc: libvirt.libvirtError, *, uri: str, action: str, subject: Subject) -> DriverError:
    """The ``DriverError`` for a failed libvirt call: our words in the message, libvirt's in the detail and the log."""
    code = exc.get_error_code()
    text = libvirt_message(exc)
    detail = f"host {uri}: cannot {action}: {text}"
    error: DriverError
    if code in _NOT_FOUND_CODES:
        error = NotFound(_not_found_message(code, subject) or f"cannot {action}: it does not exist", detail=detail)
    elif _is_connection_error(exc):
        error = HostUnreachable(f"cannot {action}: the host did not answer", detail=detail)
    elif code in _UNSUPPORTED_CODES:
        error = Unsupported(f"cannot {action}: the host does not support it", detail=detail)
    elif _HOSTFWD_FAILED in text:
        error = PortUnavailable(f"cannot {action}: a port to publish is taken on the host", detail=detail)
    elif _SHAPING_UNAVAILABLE in text:
        error = Unsupported(
            f"cannot {action}: the host cannot limit network bandwidth (its kernel lacks the traffic "
            "shaping it needs): use a flavor without network limits there",
            detail=detail,
        )
    elif code in _TRANSIENT_CODES:
        error = InvalidRequest(f"cannot {action}: the host was busy", retryable=True, detail=detail)
    else:
        reason = _REFUSAL_REASONS.get(code) or ("it already exists" if _ALREADY_EXISTS in text else "")
        error = InvalidRequest(f"cannot {action}: {reason or 'the host refused it'}", detail=detail)
    _log(error)
    return error


def unsupported_error(exc: libvirt.libvirtError, *, uri: str, action: str, reason: str) -> Unsupported:
    """``Unsupported`` for a refusal that means the host cannot do this at all, ``reason`` naming what it lacks.

    For calls whose refusals are known to mean a missing ability (a disk format without snapshots),
    where ``translate_error`` could only say the host refused.
    """
    detail = f"host {uri}: cannot {action}: {libvirt_message(exc)}"
    error = Unsupported(f"cannot {action}: {reason}", detail=detail)
    _log(error)
    return error


def open_error(exc: libvirt.libvirtError, uri: str) -> HostUnreachable:
    """The error for a connection that could not be opened; retryable unless the URI or credentials are wrong."""
    permanent = exc.get_error_code() in _PERMANENT_OPEN_CODES or exc.get_error_domain() == libvirt.VIR_FROM_URI
    reason = "the URI or the credentials were refused" if permanent else "it did not answer"
    detail = f"host {uri}: cannot connect: {libvirt_message(exc)}"
    error = HostUnreachable(f"cannot connect to the host: {reason}", retryable=not permanent, detail=detail)
    _log(error)
    return error


def _log(error: DriverError) -> None:
    # The one place libvirt's words are kept: operators read them here, nobody else sees them.
    level = logging.INFO if isinstance(error, NotFound) else logging.WARNING
    logger.log(level, "%s (%s)", error.detail, type(error).__name__)


def discard_libvirt_error(_ctx: object, _error: object) -> None:
    """libvirt prints every error to stderr by default; ours are raised as exceptions instead."""


__all__ = [
    "NO_SUBJECT",
    "UNKNOWN_FLAG_CODES",
    "Subject",
    "discard_libvirt_error",
    "has_code",
    "libvirt_message",
    "none_if_missing",
    "open_error",
    "translate_error",
    "unsupported_error",
]

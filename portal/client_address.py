"""The address a request came from, believing only what our own proxies wrote.

``X-Forwarded-For`` is a list each proxy appends to: ``client, proxy1, proxy2``, and the last hop is
``REMOTE_ADDR``. Whatever is left of the entries our proxies wrote was sent by the client and can say
anything, so with ``settings.TRUSTED_PROXIES = N`` the client is the Nth entry from the right, and
with 0 (the default: nothing in front of daphne) the header is not read at all.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Protocol

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class HasMeta(Protocol):
    """A Django ``HttpRequest`` or a DRF ``Request`` (which hands ``META`` through)."""

    META: dict[str, Any]


def _parse(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # an IPv4 client seen through a dual-stack socket
    return address


def client_ip(request: HasMeta) -> Address | None:
    """The client's address, or None when not even ``REMOTE_ADDR`` is one (a unix socket)."""
    remote = _parse(str(request.META.get("REMOTE_ADDR") or ""))
    hops = settings.TRUSTED_PROXIES
    if hops == 0:
        return remote
    header = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    entries = header.split(",") if header.strip() else []
    # The rightmost N entries were written by our proxies and must all be addresses; fewer than N
    # means the request did not come through the chain as configured (someone reached an inner
    # proxy, or a proxy did not append). Then the nearest proxy's own address is used: those
    # requests share one budget, which is safe, where believing the header would not be.
    ours = [_parse(entry) for entry in entries[-hops:]] if len(entries) >= hops else []
    if not ours or any(address is None for address in ours):
        return remote
    return ours[0]


def client_address(request: HasMeta) -> str:
    """``client_ip`` as text, in one spelling per address (``2001:db8::7``), or ``"unknown"``."""
    address = client_ip(request)
    return str(address) if address is not None else "unknown"

"""Where published guest ports are reached: the host name in their URLs and the address they bind.

A published port serves whatever the tenant's guest answers: content from another origin. It must
never share a host name with the portal, or a page on it could read the portal's ``csrftoken``
cookie, set cookies for the portal, and would pass a websocket Origin check that looks at host
names only. Cookies ignore ports, so a different port is not enough; a different name is.

``settings.ENDPOINT_HOST`` (``PORTAL_ENDPOINT_HOST``, checked at start not to be a host the portal
answers to) names the endpoints of every host; empty, each host's public address does. An IPv4
address there is also what the ports are bound to, so the URL and the socket agree.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from django.conf import settings
from django.http.request import validate_host

from portal import errors

if TYPE_CHECKING:
    from provisioning.models import Host

# Guest ports served over TLS: their URLs say https, and the probe shakes hands before it listens.
TLS_PORTS = (443, 8443)


def _configured_address() -> str | None:
    try:
        return str(ipaddress.IPv4Address(settings.ENDPOINT_HOST))
    except ValueError:
        return None


def endpoint_host(host: Host) -> str:
    """The host name (or address) people use to reach ``host``'s published ports."""
    return str(settings.ENDPOINT_HOST or host.public_address)


def bind_address(host: Host) -> str:
    """The address on ``host`` that its published ports listen on."""
    return _configured_address() or str(host.public_address)


def endpoint_url(*, host: Host, host_port: int, guest_port: int) -> str:
    scheme = "https" if guest_port in TLS_PORTS else "http"
    name = endpoint_host(host)
    if ":" in name:  # IPv6 literals need brackets in URLs
        name = f"[{name}]"
    return f"{scheme}://{name}:{host_port}/"


def is_portal_host(name: str) -> bool:
    """Whether the portal answers to ``name`` (so endpoints must not be published under it)."""
    return validate_host(name.lower(), settings.ALLOWED_HOSTS)


def check_endpoint_host(host: Host) -> None:
    """Refuse a host whose published ports would be reached under a name the portal answers to.

    With ``PORTAL_ENDPOINT_HOST`` set this cannot happen (it is checked at start); without it, each
    host's public address names its endpoints, and is checked here when a host is registered or changed.
    """
    name = endpoint_host(host)
    if is_portal_host(name):
        raise errors.Invalid.for_field(
            "public_address",
            f"stack endpoints would be published on {name}, a host the portal itself answers to (a tenant's "
            "page there could read and set the portal's cookies): give the host another public address, "
            "or set PORTAL_ENDPOINT_HOST",
        )


__all__ = ["TLS_PORTS", "bind_address", "check_endpoint_host", "endpoint_host", "endpoint_url", "is_portal_host"]

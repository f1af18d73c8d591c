"""Who may read ``/metrics``: a scraper that shows the bearer token, or one whose address is allowed.

The figures name every project, stack and host, so they are not for tenants: being signed in to the
portal gives nothing here. Two ways in, either one enough:

- ``Authorization: Bearer <settings.METRICS_TOKEN>``, compared in constant time. An empty setting
  turns token access off (an empty or missing token never matches).
- A client address within ``settings.METRICS_ALLOWED_NETWORKS``. The address is the one
  ``portal.client_address`` believes: ``X-Forwarded-For`` counts only as far as our own proxies
  wrote it (``TRUSTED_PROXIES``), so a client cannot claim to be on an allowed network.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.client_address import HasMeta, client_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    # Refused, and a token would have been accepted: answer 401 with a Bearer challenge.
    CHALLENGE = "challenge"
    # Refused, and there is no way in for this client: answer 403.
    REFUSED = "refused"


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {entry!r} is not a network") from exc
    return tuple(networks)


def allowed_networks() -> tuple[Network, ...]:
    """``settings.METRICS_ALLOWED_NETWORKS`` as networks (a bad entry fails loudly, never silently opens)."""
    return _networks(tuple(entry for entry in settings.METRICS_ALLOWED_NETWORKS if entry.strip()))


def _presented_token(request: HasMeta) -> str | None:
    header = str(request.META.get("HTTP_AUTHORIZATION") or "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def token_matches(request: HasMeta) -> bool:
    """Whether the request carries the configured bearer token; always False when none is configured."""
    expected = str(settings.METRICS_TOKEN or "")
    presented = _presented_token(request)
    if not expected or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def address_allowed(request: HasMeta) -> bool:
    address = client_ip(request)
    if address is None:
        return False
    return any(address.version == network.version and address in network for network in allowed_networks())


def scrape_verdict(request: HasMeta) -> Verdict:
    if token_matches(request) or address_allowed(request):
        return Verdict.ALLOWED
    return Verdict.CHALLENGE if settings.METRICS_TOKEN else Verdict.REFUSED

"""Where a webhook may point: http(s) only, and past the same address guard as feeds and images.

The guard (``catalog.fetch``) resolves the host and refuses private, loopback and link-local
addresses unless the host is on the operators' allowlist (``PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS``).
It runs when an owner saves the URL and again right before every delivery, and the delivery then
connects to exactly the address it checked, so a name that later resolves inward is caught too.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from catalog.fetch import (
    FetchError,
    FetchPolicy,
    resolve_checked,  # the feeds' own guard, not a copy
)
from catalog.fetch_deadline import Deadline
from portal import errors

MAX_URL_LENGTH = 500
_URL = URLValidator(schemes=["http", "https"])


@dataclass(frozen=True)
class WebhookTarget:
    """A checked destination: the URL's parts and the one address to connect to."""

    scheme: str
    host: str
    port: int
    request_target: str
    address: object  # catalog.fetch's (family, sockaddr) pair


def webhook_policy() -> FetchPolicy:
    """The feeds' allowlist, with the webhooks' short deadline and no redirects."""
    seconds = float(settings.WEBHOOK_DEADLINE_SECONDS)
    return FetchPolicy(
        allowed_private_hosts=frozenset(host.lower() for host in settings.FETCH_ALLOWED_PRIVATE_HOSTS),
        timeout_seconds=seconds,
        transfer_seconds=seconds,
        max_redirects=0,
    )


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook's address on its face (no lookup), or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"the webhook's URL may have at most {MAX_URL_LENGTH} characters"
    try:
        _URL(url)
    except ValidationError:
        return "the webhook's URL must be a full http:// or https:// address"
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "the webhook's URL may not hold a user name or password: the secret signs every delivery"
    if parts.fragment:
        return "the webhook's URL may not have a #fragment (it is never sent)"
    return None


def check_webhook_url(url: str, *, field: str = "webhook_url", deadline: Deadline | None = None) -> WebhookTarget:
    """The checked destination of ``url``, or ``errors.Invalid`` on ``field`` saying why not."""
    problem = url_problem(url)
    if problem:
        raise errors.Invalid.for_field(field, problem)
    policy = webhook_policy()
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise errors.Invalid.for_field(field, "the webhook's URL has an invalid port") from None
    host = parts.hostname or ""
    deadline = deadline or Deadline(policy.transfer_seconds, idle_seconds=policy.timeout_seconds)
    try:
        address = resolve_checked(host, port, policy, deadline)
    except FetchError as exc:
        raise errors.Invalid.for_field(field, f"the webhook cannot be used: {exc}") from None
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme=parts.scheme, host=host, port=port, request_target=request_target, address=address)

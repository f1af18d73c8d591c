"""The deployment's bounds on any lease (``PORTAL_MAX_LEASE`` and the minimum), and how a value
outside them is refused, in the same words by the services and the API."""

from __future__ import annotations

from django.conf import settings

from portal.moments import duration_text


def within_lease_bounds(seconds: int) -> bool:
    return settings.MIN_LEASE_SECONDS <= seconds <= settings.MAX_LEASE_SECONDS


def out_of_lease_bounds(subject: str) -> str:
    """``lease must be between 1 minute and 7 days``, for ``subject`` "lease"."""
    lower, upper = duration_text(settings.MIN_LEASE_SECONDS), duration_text(settings.MAX_LEASE_SECONDS)
    return f"{subject} must be between {lower} and {upper}"

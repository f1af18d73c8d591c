"""The deployment's bounds on any lease (``PORTAL_MAX_LEASE`` and the minimum), and how a value
outside them is refused, in the same words by the services and the API."""

from __future__ import annotations

from django.conf import settings


def within_lease_bounds(seconds: int) -> bool:
    return settings.MIN_LEASE_SECONDS <= seconds <= settings.MAX_LEASE_SECONDS


def out_of_lease_bounds(subject: str) -> str:
    """``lease must be between 60 and 604800 seconds``, for ``subject`` "lease"."""
    return f"{subject} must be between {settings.MIN_LEASE_SECONDS} and {settings.MAX_LEASE_SECONDS} seconds"

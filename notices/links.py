"""Absolute addresses of portal pages, for mail and webhook bodies (read away from any request)."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def absolute(path: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{path}"


def stack_page_url(stack_id: int) -> str:
    return absolute(reverse("stack-detail", args=[stack_id]))


def extend_link_url(secret: str) -> str:
    return absolute(reverse("extend-link", args=[secret]))

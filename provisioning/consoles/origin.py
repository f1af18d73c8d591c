"""Which web pages may open a console socket: the portal's own, or a configured list.

Browsers send ``Origin`` with every websocket handshake and let any page open a socket to any
host, so a console socket must refuse a foreign origin (Nova's CVE-2015-0259). A client that is not
a browser sends no ``Origin``; its ticket alone authenticates it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host


def allowed_origins() -> list[str]:
    """Origins besides the portal's own (``scheme://host[:port]``): ``CONSOLE_ALLOWED_ORIGINS``, else
    ``CSRF_TRUSTED_ORIGINS`` (the origins the operator already declared as the portal's)."""
    configured = getattr(settings, "CONSOLE_ALLOWED_ORIGINS", None)
    return list(configured if configured is not None else settings.CSRF_TRUSTED_ORIGINS)


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def origin_allowed(scope: Mapping[str, Any], extra: Iterable[str] | None = None) -> bool:
    origin = header(scope, b"origin")
    if origin is None:
        return True
    listed = {o.rstrip("/").lower() for o in (extra if extra is not None else allowed_origins())}
    if origin.rstrip("/").lower() in listed:
        return True
    parsed = urlsplit(origin)
    host = header(scope, b"host")
    if parsed.scheme not in ("http", "https") or not parsed.netloc or host is None:
        return False
    # The page must come from the very host (and port) the socket was opened on, and that host must
    # be one the portal answers to.
    if parsed.netloc.lower() != host.lower():
        return False
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


__all__ = ["allowed_origins", "header", "origin_allowed"]

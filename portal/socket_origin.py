"""Which web pages may open the portal's websockets: the one check in front of every socket route.

Browsers let any page open a websocket to any host, sending the session cookie along, and say which
page asked in ``Origin``. A socket must therefore refuse a foreign origin (CSWSH; Nova's
CVE-2015-0259 for consoles). "Foreign" means any difference in scheme, host or port: a tenant's
published endpoint may run on another port of a name the portal answers to, so comparing host names
alone (channels' ``AllowedHostsOriginValidator``) would let a tenant's page watch a victim's stacks.

Allowed: the origin the socket itself was opened on (its ``Host``, a host in ``ALLOWED_HOSTS``, the
scheme the portal is served with), or one listed exactly in ``CONSOLE_ALLOWED_ORIGINS`` (default
``CSRF_TRUSTED_ORIGINS``, without its wildcards). A handshake without ``Origin`` does not come from
a browser (browsers always send it), so no page can be behind it; its cookie or ticket alone decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

# Refused before the socket opens; the pages' scripts stop retrying on 4xxx codes.
CLOSE_FOREIGN_ORIGIN = 4403

_DEFAULT_PORTS = {"http": 80, "https": 443}

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Any, Receive, Send], Awaitable[None]]
Origin = tuple[str, str, int]


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _origin(value: str) -> Origin | None:
    """``(scheme, host, port)`` of a serialized origin; None for ``null``, ``file://`` and anything odd."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.username is not None or parts.query or parts.fragment:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _own_origin(scope: Scope) -> Origin | None:
    """The origin of the portal's pages that would open this socket: its Host, with the portal's scheme."""
    host = header(scope, b"host")
    if host is None:
        return None
    domain, port = split_domain_port(host.lower())
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    # Behind a TLS proxy the socket itself is plain ws, but PORTAL_HTTPS says the pages are https.
    scheme = "https" if scope.get("scheme") == "wss" or getattr(settings, "HTTPS", False) else "http"
    try:
        number = int(port) if port else _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, domain.strip("[]"), number


def extra_origins() -> list[str]:
    """Origins besides the portal's own: ``CONSOLE_ALLOWED_ORIGINS``, else ``CSRF_TRUSTED_ORIGINS``."""
    configured = getattr(settings, "CONSOLE_ALLOWED_ORIGINS", None)
    return list(configured if configured is not None else settings.CSRF_TRUSTED_ORIGINS)


def origin_allowed(scope: Scope, extra: Iterable[str] | None = None) -> bool:
    value = header(scope, b"origin")
    if value is None:
        return True
    origin = _origin(value)
    if origin is None:
        return False
    if settings.ENDPOINT_HOST and origin[1] == settings.ENDPOINT_HOST:
        return False  # tenants' pages, whatever else is configured
    listed = {_origin(o) for o in (extra if extra is not None else extra_origins())}
    return origin in listed or origin == _own_origin(scope)


async def refuse(receive: Receive, send: Send, *, code: int) -> None:
    """Turn a websocket handshake down (the client sees HTTP 403), with ``code`` for test clients."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": code})


class OriginGuard:
    """ASGI middleware: websockets from a foreign origin are refused before any route or consumer runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            await refuse(receive, send, code=CLOSE_FOREIGN_ORIGIN)
            return
        await self.app(scope, receive, send)


__all__ = ["CLOSE_FOREIGN_ORIGIN", "OriginGuard", "extra_origins", "header", "origin_allowed", "refuse"]

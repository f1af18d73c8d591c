"""Typed readers for settings taken from environment variables.

Each helper fails loudly with the variable's name when a value cannot be understood, so a
typo in deployment stops the process at start instead of running with a silent default.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"environment variable {name} is required")
        return default
    return value


def env_matching(name: str, default: str, *, pattern: str, explain: str) -> str:
    """A string that must match ``pattern`` entirely; ``explain`` tells the operator what is allowed."""
    value = env_str(name, default)
    if not re.fullmatch(pattern, value):
        raise ImproperlyConfigured(f"environment variable {name}={value!r} is invalid: {explain}")
    return value


def env_network(name: str, default: str) -> ipaddress.IPv4Network:
    """An IPv4 network in CIDR notation (``10.240.0.0/16``), private, with no host bits set."""
    value = env_str(name, default)
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"environment variable {name}={value!r} is not an IPv4 network: {exc}") from None
    if not network.is_private:
        raise ImproperlyConfigured(f"environment variable {name}={value!r} must be a private range")
    return network


_HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


def env_endpoint_host(name: str, default: str, *, portal_hosts: list[str]) -> str:
    """A host name or IPv4 address for published guest ports, or empty; never one of ``portal_hosts``.

    Whatever a guest serves there is a tenant's page: on a host the portal answers to, it could read
    and set the portal's cookies. ``portal_hosts`` are ALLOWED_HOSTS patterns (``.example.org``, ``*``).
    """
    from django.http.request import validate_host

    value = env_str(name, default).strip().lower()
    if value and not _HOST_NAME.fullmatch(value):
        raise ImproperlyConfigured(f"environment variable {name}={value!r} is not a host name or IPv4 address")
    if value and validate_host(value, portal_hosts):
        raise ImproperlyConfigured(
            f"environment variable {name}={value!r} is a host the portal answers to (DJANGO_ALLOWED_HOSTS): "
            "stack endpoints need a host name of their own"
        )
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use one of {sorted(_TRUE | _FALSE)})")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def database_from_url(url: str, *, variable: str = "DATABASE_URL") -> dict:
    """Turn ``postgres://user:pass@host:port/name?opt=v`` or ``sqlite:///path`` into a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:////abs/path.db is absolute, sqlite:///var/path.db relative to the working directory.
        raw_path = unquote(parts.path)
        path = raw_path[1:] if raw_path.startswith("//") else raw_path.lstrip("/")
        if not path:
            raise ImproperlyConfigured(f"{variable}={url!r} names no SQLite file")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if parts.scheme in {"postgres", "postgresql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"{variable}={url!r} names no database")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{variable}={url!r} has an invalid port") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": dict(parse_qsl(parts.query)),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"{variable}={url!r}: unsupported scheme {parts.scheme!r} (use postgres:// or sqlite://)"
    )


def redis_url(name: str = "REDIS_URL") -> str | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name}={raw!r}: unsupported scheme {parts.scheme!r} (use redis://)")
    return raw

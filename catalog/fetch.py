"""Fetching untrusted feeds and images: our own HTTP client with the guards a portal needs.

feedparser and urllib would happily follow redirects anywhere and read from any address, so
the portal fetches bytes itself and hands them over. Each request resolves the host once,
refuses private, loopback and link-local addresses unless the host is explicitly allowed,
connects to exactly the address it checked (no DNS rebinding between check and use),
re-checks every redirect, and stops at a size cap and a deadline.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from django.conf import settings

CHUNK_BYTES = 1024 * 1024
USER_AGENT = "stackportal/0.1 (+vmcast)"


class FetchError(Exception):
    """The URL could not be fetched safely; the message says why in words a user can act on."""


@dataclass(frozen=True)
class FetchPolicy:
    allowed_private_hosts: frozenset[str] = frozenset()
    file_roots: tuple[Path, ...] = ()
    timeout_seconds: float = 30.0  # per connect and per read
    transfer_seconds: float = 3600.0  # for the whole body, so a slow drip cannot hold a worker forever
    max_redirects: int = 3

    @classmethod
    def from_settings(cls) -> FetchPolicy:
        return cls(
            allowed_private_hosts=frozenset(h.lower() for h in settings.FETCH_ALLOWED_PRIVATE_HOSTS),
            file_roots=tuple(settings.FETCH_FILE_ROOTS),
            timeout_seconds=float(settings.FETCH_TIMEOUT_SECONDS),
        )


@dataclass(frozen=True)
class FetchResult:
    size_bytes: int
    sha256: str


def _resolve_checked(host: str, port: int, policy: FetchPolicy) -> str:
    """Resolve ``host`` and return one address to connect to, refusing non-public ones unless allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve host '{host}': {exc.strerror}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise FetchError(f"host '{host}' has no address")
    if host.lower() not in policy.allowed_private_hosts:
        for address in addresses:
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise FetchError(
                    f"refusing to fetch from '{host}': it resolves to the non-public address {address} "
                    "(an operator can allow it in PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS)"
                )
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # Certificate and SNI are checked against the name, while the socket goes to the checked address.
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def _file_path(url: str, policy: FetchPolicy) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"file URL '{url}' names a remote host")
    path = Path(unquote(parts.path)).resolve()
    if not any(path.is_relative_to(root) for root in policy.file_roots):
        raise FetchError(f"file URL '{url}' is outside the folders feeds may be read from (PORTAL_FETCH_FILE_ROOTS)")
    if not path.is_file():
        raise FetchError(f"file '{path}' does not exist")
    return path


def validate_url(url: str) -> None:
    """Cheap syntactic check before a URL is stored; the real checks happen at fetch time."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file"):
        raise FetchError(f"unsupported URL scheme '{parts.scheme}' (use http, https or file)")
    if parts.scheme != "file" and not parts.hostname:
        raise FetchError(f"URL '{url}' has no host")


@contextmanager
def open_stream(url: str, *, policy: FetchPolicy, max_bytes: int) -> Iterator[tuple[Iterator[bytes], int | None]]:
    """Yield ``(chunks, declared_length)`` for ``url``; the chunk iterator enforces size cap and deadline."""
    validate_url(url)
    deadline = time.monotonic() + policy.transfer_seconds
    if urlsplit(url).scheme == "file":
        path = _file_path(url, policy)
        size = path.stat().st_size
        if size > max_bytes:
            raise FetchError(f"{url}: {size} bytes is over the limit of {max_bytes}")
        with path.open("rb") as handle:
            yield _capped(iter(partial(handle.read, CHUNK_BYTES), b""), url, max_bytes, deadline), size
        return

    current = url
    for _ in range(policy.max_redirects + 1):
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"redirect to unsupported scheme '{parts.scheme}' refused")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError(f"URL '{current}' has an invalid port") from None
        host = parts.hostname or ""
        address = _resolve_checked(host, port, policy)
        connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        connection = connection_class(host, port, address, policy.timeout_seconds)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", target, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise FetchError(f"cannot fetch {current}: {exc}") from None
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"{current}: redirect without a Location header")
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise FetchError(f"{current}: HTTP {response.status} {response.reason}")
            declared = response.getheader("Content-Length")
            length = int(declared) if declared and declared.isdigit() else None
            if length is not None and length > max_bytes:
                raise FetchError(f"{current}: {length} bytes is over the limit of {max_bytes}")
            chunks = iter(partial(response.read, CHUNK_BYTES), b"")
            yield _capped(_guard_socket_errors(chunks, current), current, max_bytes, deadline), length
            return
        finally:
            connection.close()
    raise FetchError(f"{url}: more than {policy.max_redirects} redirects")


def _guard_socket_errors(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"{url}: transfer failed: {exc}") from None


def _capped(chunks: Iterator[bytes], url: str, max_bytes: int, deadline: float) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(f"{url}: more than {max_bytes} bytes, stopped")
        if time.monotonic() > deadline:
            raise FetchError(f"{url}: transfer took too long, stopped")
        yield chunk


def fetch_bytes(url: str, *, policy: FetchPolicy, max_bytes: int) -> bytes:
    with open_stream(url, policy=policy, max_bytes=max_bytes) as (chunks, _length):
        return b"".join(chunks)


def fetch_to_file(
    url: str,
    destination: Path,
    *,
    policy: FetchPolicy,
    max_bytes: int,
    progress: Callable[[int, int | None], None] | None = None,
) -> FetchResult:
    """Stream ``url`` into ``destination`` while computing its sha256. The caller owns the file afterwards."""
    digest = hashlib.sha256()
    done = 0
    with open_stream(url, policy=policy, max_bytes=max_bytes) as (chunks, length), destination.open("wb") as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, length)
    return FetchResult(size_bytes=done, sha256=digest.hexdigest())

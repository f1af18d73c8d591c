"""Fetching untrusted feeds and images: our own HTTP client with the guards a portal needs.

feedparser and urllib would happily follow redirects anywhere and read from any address, so
the portal fetches bytes itself and hands them over. Each request resolves the host once,
refuses private, loopback and link-local addresses unless the host is explicitly allowed,
connects to exactly the address it checked (no DNS rebinding between check and use),
re-checks every redirect, and stops at a size cap and at a deadline.

The deadline is wall-clock time for the whole request, name lookup included, enforced in the
socket itself (``catalog.fetch_deadline``): every connect, send, TLS handshake step and read waits
at most until the deadline (and at most ``timeout_seconds``), so a server that drips a byte at a
time, in the headers, the handshake or the body, is cut off on time rather than after each read
returns.

Credentials in a URL (``https://user:pass@host/…``) are sent as HTTP basic authentication, and
only to that URL's own origin: a redirect elsewhere does not get them. No message repeats them.

Feeds are fetched conditionally (``fetch_if_changed``): the validators of the last accepted answer
go back as If-None-Match / If-Modified-Since, and a 304 ends the request with no body read
(``catalog.fetch_validators``). Connections go to the checked address (``catalog.fetch_pinned``);
the names those modules define for callers are importable from here as well.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from django.conf import settings

from catalog.fetch_deadline import Deadline, DeadlinePassed, resolve_within
from catalog.fetch_pinned import PinnedHTTPConnection, PinnedHTTPSConnection, Target
from catalog.fetch_validators import ConditionalAnswer, Validators, validators_of
from catalog.redaction import redact_urls_in

CHUNK_BYTES = 1024 * 1024  # read from the network in one call (fewer system calls, one sha256 update)
# Written to disk in slices, as curl does: on this kernel (6.18, ext4) the kernel time of a write grows
# with its size, and 1 MiB writes took 2-3 times the CPU of 16 KiB ones, halving the download rate
# (benchmarks/fetch.py; 64 KiB was in between).
WRITE_BYTES = 16 * 1024
USER_AGENT = "stackportal/0.1 (+vmcast)"


class FetchError(Exception):
    """The URL could not be fetched safely; the message says why in words a user can act on.

    Messages quote URLs; any credentials in them are redacted here, whoever builds the message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(redact_urls_in(message))


@dataclass(frozen=True)
class FetchPolicy:
    allowed_private_hosts: frozenset[str] = frozenset()
    file_roots: tuple[Path, ...] = ()
    timeout_seconds: float = 30.0  # the longest any one connect, send or read may wait
    transfer_seconds: float = 600.0  # the whole request, first connect to last byte, whatever the server does
    max_redirects: int = 3

    @classmethod
    def for_feeds(cls) -> FetchPolicy:
        return cls._from_settings(transfer_seconds=settings.FETCH_FEED_DEADLINE_SECONDS)

    @classmethod
    def for_images(cls) -> FetchPolicy:
        return cls._from_settings(transfer_seconds=settings.FETCH_IMAGE_DEADLINE_SECONDS)

    @classmethod
    def _from_settings(cls, *, transfer_seconds: float) -> FetchPolicy:
        return cls(
            allowed_private_hosts=frozenset(h.lower() for h in settings.FETCH_ALLOWED_PRIVATE_HOSTS),
            file_roots=tuple(settings.FETCH_FILE_ROOTS),
            timeout_seconds=float(settings.FETCH_TIMEOUT_SECONDS),
            transfer_seconds=float(transfer_seconds),
        )


@dataclass(frozen=True)
class FetchResult:
    size_bytes: int
    sha256: str


def resolve_checked(host: str, port: int, policy: FetchPolicy, deadline: Deadline) -> Target:
    """Resolve ``host`` and return one address to connect to, refusing non-public ones unless allowed."""
    try:
        infos = resolve_within(deadline, host, port)
    except DeadlinePassed:
        raise FetchError(
            f"cannot resolve host '{host}': no answer within {deadline.idle_seconds:g} s or the deadline"
        ) from None
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve host '{host}': {exc.strerror}") from None
    except ValueError:  # UnicodeError from the idna codec: an empty or over-long label ("a..b")
        raise FetchError(f"'{host[:100]}' is not a valid host name") from None
    if not infos:
        raise FetchError(f"host '{host}' has no address")
    if host.lower() not in policy.allowed_private_hosts:
        for info in infos:
            address = str(info[4][0])
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise FetchError(
                    f"refusing to fetch from '{host}': it resolves to the non-public address {address} "
                    "(an operator can allow it in PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS)"
                )
    family, _type, _proto, _name, sockaddr = infos[0]
    return family, sockaddr


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
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise FetchError(f"URL '{url}' is malformed: {exc}") from None
    if parts.scheme not in ("http", "https", "file"):
        raise FetchError(f"unsupported URL scheme '{parts.scheme}' (use http, https or file)")
    if parts.scheme != "file" and not parts.hostname:
        raise FetchError(f"URL '{url}' has no host")
    if "@" in parts.path + parts.query + parts.fragment:
        # "https://user:pa/ss@host/" is host "user" and path "/ss@host/" to every parser: the password
        # would go to the wrong place, and no one could tell it from the path when showing the URL.
        # (Said without an "@": text after a URL up to its next "/" is read as the URL's when redacted.)
        raise FetchError(
            "the URL has an at sign after its host name: in a user name or password, write the at sign, "
            "slash, question mark and hash as %40, %2F, %3F and %23; elsewhere, write the at sign as %40"
        )


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _basic_auth(parts: SplitResult) -> str | None:
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


class _Readable(Protocol):
    def readinto(self, buffer: memoryview) -> int: ...


class Body:
    """A response body being read: ``readinto`` enforces the size cap and the deadline."""

    def __init__(self, source: _Readable, *, url: str, length: int | None, max_bytes: int, deadline: Deadline):
        self.length = length  # as the server declared it, if it did
        self.done = 0
        self._source = source
        self._url = url
        self._max_bytes = max_bytes
        self._deadline = deadline

    def readinto(self, buffer: memoryview) -> int:
        # One byte more than the cap may take, so a body over the cap is seen rather than cut short.
        room = self._max_bytes + 1 - self.done
        try:
            count = self._source.readinto(buffer[:room] if room < len(buffer) else buffer)
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(_explain(exc, self._deadline, self._url, f"{self._url}: transfer failed: {exc}")) from None
        self.done += count
        if self.done > self._max_bytes:
            raise FetchError(f"{self._url}: more than {self._max_bytes} bytes, stopped")
        if self._deadline.passed():  # the socket stops network reads; this also bounds file:// reads
            raise FetchError(self._deadline.message(self._url))
        return count


def _explain(exc: BaseException, deadline: Deadline, url: str, otherwise: str) -> str:
    """A timeout at or after the deadline is the deadline's doing, whichever call noticed it."""
    return deadline.message(url) if isinstance(exc, DeadlinePassed) or deadline.passed() else otherwise


@dataclass(frozen=True)
class _Answer:
    body: Body | None  # None: the server answered 304 to the validators sent
    validators: Validators


@contextmanager
def open_stream(url: str, *, policy: FetchPolicy, max_bytes: int) -> Iterator[Body]:
    """Yield the body of ``url``, read with ``Body.readinto`` under the policy's caps."""
    with _open(url, policy=policy, max_bytes=max_bytes, validators=Validators()) as answer:
        assert answer.body is not None  # nothing conditional was asked, so a 304 was refused
        yield answer.body


@contextmanager
def _open(url: str, *, policy: FetchPolicy, max_bytes: int, validators: Validators) -> Iterator[_Answer]:
    """Yield the answer to a GET of ``url``: a 304 only when ``validators`` were sent, else a 200's body."""
    validate_url(url)
    deadline = Deadline(policy.transfer_seconds, idle_seconds=policy.timeout_seconds)
    if urlsplit(url).scheme == "file":
        # A file has no validators: it is read whole each time.
        path = _file_path(url, policy)
        size = path.stat().st_size
        if size > max_bytes:
            raise FetchError(f"{url}: {size} bytes is over the limit of {max_bytes}")
        with path.open("rb") as handle:
            yield _Answer(Body(handle, url=url, length=size, max_bytes=max_bytes, deadline=deadline), Validators())
        return

    first = urlsplit(url)
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
        # The validators go with every hop: the answer they describe is wherever the redirects end.
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **validators.as_request_headers()}
        # The URL's own credentials, or the first URL's when the redirect stays on its origin.
        authorization = _basic_auth(parts) or (_basic_auth(first) if _origin(parts) == _origin(first) else None)
        if authorization:
            headers["Authorization"] = authorization
        target = resolve_checked(host, port, policy, deadline)
        connection_class = PinnedHTTPSConnection if parts.scheme == "https" else PinnedHTTPConnection
        connection = connection_class(host, port, target, deadline)
        request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", request_target, headers=headers)
            response = connection.getresponse()
        except http.client.InvalidURL:
            # Its text quotes the path and query whole, where a signed URL keeps its signature.
            connection.close()
            raise FetchError(f"{current}: the URL holds spaces or control characters (percent-encode them)") from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise FetchError(_explain(exc, deadline, current, f"cannot fetch {current}: {exc}")) from None
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"{current}: redirect without a Location header")
                current = urljoin(current, location)
                continue
            if response.status == 304 and validators:
                # Unchanged: a 304 has no body, so nothing more is read.
                yield _Answer(None, validators_of(response) or validators)
                return
            if response.status != 200:
                raise FetchError(f"{current}: HTTP {response.status} {response.reason}")
            declared = response.getheader("Content-Length")
            length = int(declared) if declared and declared.isdigit() else None
            if length is not None and length > max_bytes:
                raise FetchError(f"{current}: {length} bytes is over the limit of {max_bytes}")
            body = Body(response, url=current, length=length, max_bytes=max_bytes, deadline=deadline)
            yield _Answer(body, validators_of(response))
            return
        finally:
            connection.close()
    raise FetchError(f"{url}: more than {policy.max_redirects} redirects")


def _copy(body: Body, sinks: list[Callable[[memoryview], object]], progress: Callable[[int], None] | None) -> None:
    buffer = memoryview(bytearray(CHUNK_BYTES))
    while count := body.readinto(buffer):
        chunk = buffer[:count]
        for sink in sinks:
            sink(chunk)
        if progress:
            progress(body.done)


def fetch_bytes(url: str, *, policy: FetchPolicy, max_bytes: int) -> bytes:
    data = bytearray()
    with open_stream(url, policy=policy, max_bytes=max_bytes) as body:
        _copy(body, [data.extend], None)
    return bytes(data)


def fetch_if_changed(
    url: str,
    *,
    policy: FetchPolicy,
    max_bytes: int,
    validators: Validators = Validators(),  # noqa: B008 - frozen, so one shared default is safe
) -> ConditionalAnswer:
    """``url``'s body with its validators, or none if the server says it is unchanged since ``validators``.

    The guards are ``fetch_bytes``'s. The validators returned are the answer's own (empty when it
    gives none, and always for file URLs); a 304 returns the ones it names, or else those sent.
    """
    with _open(url, policy=policy, max_bytes=max_bytes, validators=validators) as answer:
        if answer.body is None:
            return ConditionalAnswer(data=None, validators=answer.validators)
        data = bytearray()
        _copy(answer.body, [data.extend], None)
        return ConditionalAnswer(data=bytes(data), validators=answer.validators)


def fetch_to_file(
    url: str,
    destination: Path,
    *,
    policy: FetchPolicy,
    max_bytes: int,
    progress: Callable[[int, int | None], None] | None = None,
) -> FetchResult:
    """Stream ``url`` into ``destination`` while computing its sha256.

    The caller owns the file afterwards; when the fetch fails, nothing is left at ``destination``.
    """
    digest = hashlib.sha256()
    try:
        with open_stream(url, policy=policy, max_bytes=max_bytes) as body, destination.open("wb") as out:

            def write(chunk: memoryview) -> None:
                for start in range(0, len(chunk), WRITE_BYTES):
                    out.write(chunk[start : start + WRITE_BYTES])

            length = body.length
            _copy(body, [digest.update, write], (lambda done: progress(done, length)) if progress else None)
            return FetchResult(size_bytes=body.done, sha256=digest.hexdigest())
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


__all__ = [
    "CHUNK_BYTES",
    "USER_AGENT",
    "WRITE_BYTES",
    "Body",
    "ConditionalAnswer",
    "FetchError",
    "FetchPolicy",
    "FetchResult",
    "PinnedHTTPConnection",
    "PinnedHTTPSConnection",
    "Validators",
    "fetch_bytes",
    "fetch_if_changed",
    "fetch_to_file",
    "open_stream",
    "resolve_checked",
    "validate_url",
]

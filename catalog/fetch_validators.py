"""Conditional GETs of feeds: the validators of the last accepted answer (ETag, Last-Modified) go back
as If-None-Match / If-Modified-Since, and a 304 says the feed is unchanged with no body to read."""

from __future__ import annotations

import http.client
from dataclasses import dataclass

# The columns the validators are kept in (Feed.etag, Feed.last_modified): a longer one is not kept.
MAX_ETAG_CHARS = 300
MAX_LAST_MODIFIED_CHARS = 100


@dataclass(frozen=True)
class Validators:
    """What a server said identifies its answer (ETag, Last-Modified), sent back to ask whether it changed."""

    etag: str = ""
    last_modified: str = ""

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)

    def as_request_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class ConditionalAnswer:
    """A conditional fetch: the body, or None when the server answered 304 (unchanged since ``validators``)."""

    data: bytes | None
    validators: Validators

    @property
    def unchanged(self) -> bool:
        return self.data is None


def validators_of(response: http.client.HTTPResponse) -> Validators:
    """The validators a response names, each only if it can be sent back as it is."""
    return Validators(
        etag=_header_value(response.getheader("ETag"), MAX_ETAG_CHARS),
        last_modified=_header_value(response.getheader("Last-Modified"), MAX_LAST_MODIFIED_CHARS),
    )


def _header_value(value: str | None, limit: int) -> str:
    """A validator as it may be sent back: printable ASCII within the column's size, else none at all.

    http.client refuses a header value holding a line break, and a cut ETag would never match.
    """
    if not value or len(value) > limit or not all(" " <= char <= "~" for char in value):
        return ""
    return value


__all__ = ["MAX_ETAG_CHARS", "MAX_LAST_MODIFIED_CHARS", "ConditionalAnswer", "Validators", "validators_of"]

"""The tus resumable upload protocol, 1.0.0 (https://tus.io/protocols/resumable-upload), as the portal speaks it.

Core (HEAD for the offset, PATCH to append), and the extensions ``creation`` (POST with
Upload-Length and Upload-Metadata), ``termination`` (DELETE), ``expiration`` (Upload-Expires) and
``checksum`` (Upload-Checksum on a PATCH, 460 when the bytes do not match). Not
``creation-defer-length``, ``creation-with-upload`` or ``concatenation``.

This module reads and writes headers only; what an upload is and may do lives in
``transfers.uploads``. Each refusal is a ``PortalError`` with the status the protocol names, so the
API's one exception handler answers it in the API's error body like any other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.http import http_date

from portal.errors import Invalid, PortalError

VERSION = "1.0.0"
EXTENSIONS = ("creation", "termination", "expiration", "checksum")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# What Upload-Checksum may name, and how each digest is made.
CHECKSUMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}

# Upload-Metadata is a header: a few short values. Far longer ones are refused rather than decoded.
MAX_METADATA_CHARS = 4096
MAX_METADATA_KEYS = 16
# Unsigned decimal, as the protocol writes every length and offset; 19 digits cover any file.
_NUMBER = re.compile(r"[0-9]{1,19}")
# A key: printable ASCII without space or comma (the protocol's separators).
_METADATA_KEY = re.compile(r"[!-+\--~]{1,64}")


class VersionUnsupported(PortalError):
    """No Tus-Resumable header, or a version this server does not speak."""

    code = "tus_version"
    status = 412


class OffsetMismatch(PortalError):
    """Upload-Offset is not where the upload stands: the client must ask (HEAD) and go on from there."""

    code = "offset_mismatch"
    status = 409


class TooLarge(PortalError):
    code = "too_large"
    status = 413


class LengthRequired(PortalError):
    code = "length_required"
    status = 411


class WrongContentType(PortalError):
    code = "unsupported_media_type"
    status = 415


class UploadLocked(PortalError):
    """Another request is writing to the same upload right now."""

    code = "locked"
    status = 423


class UploadGone(PortalError):
    """The upload expired before its last byte arrived."""

    code = "gone"
    status = 410


class ChecksumMismatch(PortalError):
    code = "checksum_mismatch"
    status = 460


class NoRoom(PortalError):
    """The portal's disk has no room for the bytes; trying later (or a smaller file) may help."""

    code = "insufficient_storage"
    status = 507


@dataclass(frozen=True)
class Checksum:
    """What Upload-Checksum says a PATCH's body is."""

    algorithm: str
    digest: bytes

    def new_hash(self) -> Any:
        return CHECKSUMS[self.algorithm]()


def check_version(value: str | None) -> None:
    if value is None:
        raise VersionUnsupported(f"the Tus-Resumable header is missing; this server speaks tus {VERSION}")
    if value.strip() != VERSION:
        raise VersionUnsupported(f"this server speaks tus {VERSION}, not '{value[:20]}'")


def parse_number(value: str | None, *, header: str) -> int:
    """A length or offset header: a whole number of bytes, nothing else."""
    if value is None:
        raise _header_error(header, f"the {header} header is missing")
    text = value.strip()
    if not _NUMBER.fullmatch(text):
        raise _header_error(header, f"{header} must be a whole number of bytes, not '{text[:30]}'")
    return int(text)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated ``key base64(value)`` pairs (a key alone means an empty value)."""
    if value is None or not value.strip():
        return {}
    if len(value) > MAX_METADATA_CHARS:
        raise _metadata_error(f"Upload-Metadata is longer than {MAX_METADATA_CHARS} characters")
    pairs = value.split(",")
    if len(pairs) > MAX_METADATA_KEYS:
        raise _metadata_error(f"Upload-Metadata has more than {MAX_METADATA_KEYS} keys")
    metadata: dict[str, str] = {}
    for pair in pairs:
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not _METADATA_KEY.fullmatch(parts[0]):
            raise _metadata_error("Upload-Metadata must be comma-separated pairs of a key and a base64 value")
        key = parts[0]
        if key in metadata:
            raise _metadata_error(f"Upload-Metadata names '{key}' twice")
        metadata[key] = _base64_text(key, parts[1] if len(parts) == 2 else "")
    return metadata


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """The Upload-Metadata header for ``metadata`` (empty values as a key alone)."""
    pairs = []
    for key, text in metadata.items():
        pairs.append(f"{key} {base64.b64encode(text.encode()).decode()}" if text else key)
    return ",".join(pairs)


def parse_checksum(value: str | None) -> Checksum | None:
    """Upload-Checksum: ``<algorithm> <base64 digest>``; None when the client sent none."""
    if value is None:
        return None
    parts = value.strip().split(" ")
    if len(parts) != 2:
        raise _header_error("Upload-Checksum", "Upload-Checksum must be an algorithm and a base64 digest")
    algorithm, encoded = parts[0].lower(), parts[1]
    if algorithm not in CHECKSUMS:
        raise _header_error(
            "Upload-Checksum", f"checksum algorithm '{algorithm[:20]}' is not one of {', '.join(CHECKSUMS)}"
        )
    try:
        digest = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _header_error("Upload-Checksum", "the Upload-Checksum digest is not base64") from None
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise _header_error("Upload-Checksum", f"a {algorithm} digest is {CHECKSUMS[algorithm]().digest_size} bytes")
    return Checksum(algorithm=algorithm, digest=digest)


def check_content_type(value: str | None) -> None:
    media_type = (value or "").split(";")[0].strip().lower()
    if media_type != OFFSET_CONTENT_TYPE:
        raise WrongContentType(f"a PATCH body must be sent as {OFFSET_CONTENT_TYPE}")


def expires_header(moment: datetime) -> str:
    """Upload-Expires: the moment in HTTP's date format (RFC 9110)."""
    return http_date(moment.timestamp())


def discovery_headers(*, max_size: int) -> dict[str, str]:
    """What an OPTIONS request learns: the versions, extensions, size limit and checksum algorithms."""
    return {
        "Tus-Version": VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    }


def _base64_text(key: str, encoded: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise _metadata_error(f"the value of '{key}' in Upload-Metadata is not base64-encoded UTF-8 text") from None


def _metadata_error(message: str) -> PortalError:
    return Invalid.for_field("Upload-Metadata", message)


def _header_error(header: str, message: str) -> PortalError:
    return Invalid.for_field(header, message)


__all__ = [
    "CHECKSUMS",
    "EXTENSIONS",
    "OFFSET_CONTENT_TYPE",
    "VERSION",
    "Checksum",
    "ChecksumMismatch",
    "LengthRequired",
    "NoRoom",
    "OffsetMismatch",
    "TooLarge",
    "UploadGone",
    "UploadLocked",
    "VersionUnsupported",
    "WrongContentType",
    "check_content_type",
    "check_version",
    "discovery_headers",
    "encode_metadata",
    "expires_header",
    "parse_checksum",
    "parse_metadata",
    "parse_number",
]

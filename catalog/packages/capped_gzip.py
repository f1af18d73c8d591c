"""Decompressing gzip from strangers: a few KiB can inflate to terabytes, so every stream has a byte cap.

``gzip.GzipFile.read(n)`` inflates at most ``n`` bytes per call, so memory stays bounded; the cap
stops the stream once its total passes the limit, long before a bomb fills the disk.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Protocol

from catalog.packages.errors import PackageError

GZIP_MAGIC = b"\x1f\x8b"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def looks_gzipped(head: bytes) -> bool:
    return head.startswith(GZIP_MAGIC)


class CappedGunzip:
    """The decompressed bytes of a gzip stream; ``PackageError`` once they pass ``max_bytes``."""

    def __init__(self, source: Readable, *, max_bytes: int, what: str) -> None:
        self._gzip = gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[call-overload]
        self._max_bytes = max_bytes
        self._what = what
        self.done = 0

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            raise ValueError("read a capped stream in bounded chunks")
        try:
            chunk = self._gzip.read(size)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise PackageError(f"{self._what} is not valid gzip data ({exc})") from None
        self.done += len(chunk)
        if self.done > self._max_bytes:
            raise PackageError(
                f"{self._what} expands to more than {self._max_bytes} bytes once decompressed "
                "(PORTAL_IMAGE_MAX_BYTES); refusing it"
            )
        return chunk

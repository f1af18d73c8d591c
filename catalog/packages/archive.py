"""A downloaded package read as a tar stream, and what taking it apart yields."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from catalog.packages.capped_gzip import CappedGunzip, Readable, looks_gzipped
from catalog.packages.sizing import Sizing

# The name the disk taken out of a package gets in the import's scratch folder (never the archive's name for it).
DISK_FILE_NAME = "package-disk"


@dataclass(frozen=True)
class PackageDisk:
    """The package's first disk and what the package says about it."""

    disk: Path | None  # extracted into the scratch folder; None when only the descriptor was read
    declared_format: str  # the disk format the package's descriptor names ("" when it names none)
    sizing: Sizing = field(default_factory=Sizing)
    ignored: tuple[str, ...] = ()  # what the descriptor asked of the host that the portal left out


@contextmanager
def package_stream(path: Path, *, max_bytes: int) -> Iterator[Readable]:
    """The package's tar stream: the file itself, or its decompressed bytes (at most ``max_bytes``) when gzipped."""
    with path.open("rb") as handle:
        head = handle.read(2)
        handle.seek(0)
        yield CappedGunzip(handle, max_bytes=max_bytes, what="the package") if looks_gzipped(head) else handle


def strip_gz(name: str) -> str:
    return name.removesuffix(".gz")

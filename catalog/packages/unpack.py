"""Taking a downloaded package apart: its first disk, in a format its header proves, and the sizing it asks for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from catalog.images import ImageError, settle_disk_format
from catalog.packages.archipel import unpack_xvm2
from catalog.packages.archive import PackageDisk
from catalog.packages.errors import PackageError
from catalog.packages.ova import unpack_ova
from catalog.packages.sizing import Sizing

PACKAGE_KINDS = ("xvm2", "ova")  # ApplianceVersion.Package values other than a plain disk
_READERS: dict[str, Callable[..., PackageDisk]] = {"xvm2": unpack_xvm2, "ova": unpack_ova}


@dataclass(frozen=True)
class UnpackedPackage:
    disk: Path | None  # in the scratch folder; None when only the descriptor was read
    disk_format: str  # as the disk's header shows it (and every declaration agrees); "" when not extracted
    sizing: Sizing
    ignored: tuple[str, ...]  # what the descriptor asked of the host that was left out


def unpack_package(
    path: Path,
    *,
    package: str,
    scratch: Path,
    extract: bool,
    max_bytes: int,
    feed_disk_format: str = "",
    tick: Callable[[], None] | None = None,
) -> UnpackedPackage:
    """Read the package at ``path``; with ``extract``, also put its first disk into ``scratch``.

    ``feed_disk_format`` is what the feed declared for the version ("" or the package's own kind
    when it declared nothing about the disk inside). Raises ``PackageError`` saying why the package
    cannot be used.
    """
    reader = _READERS.get(package)
    if reader is None:
        raise PackageError(f"'{package}' is not a kind of package the portal reads")
    found = reader(path, scratch=scratch, extract=extract, max_bytes=max_bytes, tick=tick)
    disk_format = ""
    if found.disk is not None:
        try:
            disk_format = settle_disk_format(found.disk, declared=found.declared_format, declared_by="the package")
            if feed_disk_format not in ("", *PACKAGE_KINDS):
                settle_disk_format(found.disk, declared=feed_disk_format)
        except ImageError as exc:
            raise PackageError(str(exc)) from None
    return UnpackedPackage(disk=found.disk, disk_format=disk_format, sizing=found.sizing, ignored=found.ignored)

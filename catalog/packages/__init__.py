"""Packages that hold a disk image: Archipel's .xvm2 and OVA, taken apart when first downloaded.

Every byte of a package is hostile. It is read as a tar stream by ``safe_tar`` (nothing extracted
under a name the archive chose, links, devices and oddities refused, sizes capped), decompressed by
``capped_gzip`` with a byte cap, and its descriptor parsed by ``safe_xml`` (no DTD, no entities).
From the descriptor the portal takes the first disk and the sizing, nothing else: host paths,
devices, emulators and command lines in it are left out. Everything is written into the import's
scratch folder (``scratch``), which is removed however the import ends.

An OVA describing several machines (a VirtualSystemCollection) is refused: the portal launches
appliances of one machine.
"""

from __future__ import annotations

from catalog.packages.archive import PackageDisk
from catalog.packages.errors import PackageError
from catalog.packages.scratch import scratch_folder, sweep_dead_scratch
from catalog.packages.sizing import Sizing
from catalog.packages.unpack import PACKAGE_KINDS, UnpackedPackage, unpack_package

__all__ = [
    "PACKAGE_KINDS",
    "PackageDisk",
    "PackageError",
    "Sizing",
    "UnpackedPackage",
    "scratch_folder",
    "sweep_dead_scratch",
    "unpack_package",
]

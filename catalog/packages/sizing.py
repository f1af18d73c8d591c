"""What a package asks of the machine it runs on (vCPUs, memory), read with the units it wrote, and bounded.

A package may ask for anything; the portal takes its numbers as the version's minimums only up to
``MAX_VCPUS`` and ``MAX_RAM_MIB``, so a descriptor cannot make a version that no flavor could ever
launch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MIB = 1024**2
MAX_VCPUS = 64
MAX_RAM_MIB = 256 * 1024

# libvirt's <memory unit="..."> (KiB when absent): https://libvirt.org/formatdomain.html#memory-allocation
LIBVIRT_MEMORY_UNITS = {
    "b": 1,
    "bytes": 1,
    "kb": 10**3,
    "k": 2**10,
    "kib": 2**10,
    "mb": 10**6,
    "m": 2**20,
    "mib": 2**20,
    "gb": 10**9,
    "g": 2**30,
    "gib": 2**30,
    "tb": 10**12,
    "t": 2**40,
    "tib": 2**40,
}
# OVF rasd:AllocationUnits, as DSP0004's programmatic units ("byte * 2^20") or the older names.
_OVF_NAMED_UNITS = {
    "byte": 1,
    "bytes": 1,
    "kilobytes": 2**10,
    "kb": 2**10,
    "megabytes": 2**20,
    "mb": 2**20,
    "gigabytes": 2**30,
    "gb": 2**30,
}
_OVF_PROGRAMMATIC_UNIT = re.compile(r"bytes?\*(2|10)\^(\d{1,2})")


@dataclass(frozen=True)
class Sizing:
    """vCPUs and memory a package declares; None where it says nothing usable."""

    vcpus: int | None = None
    ram_mib: int | None = None


def bounded_sizing(*, vcpus: int | None, ram_bytes: int | None) -> Sizing:
    cpus = min(vcpus, MAX_VCPUS) if vcpus else None
    ram = min(math.ceil(ram_bytes / MIB), MAX_RAM_MIB) if ram_bytes else None
    return Sizing(vcpus=cpus, ram_mib=ram)


def libvirt_unit_bytes(unit: str) -> int | None:
    return LIBVIRT_MEMORY_UNITS.get((unit or "KiB").strip().lower())


def ovf_unit_bytes(unit: str) -> int | None:
    """Bytes per unit of an OVF allocation unit (MiB when the descriptor gives none); None when unknown."""
    compact = "".join(unit.split()).lower()
    if not compact:
        return MIB
    if compact in _OVF_NAMED_UNITS:
        return _OVF_NAMED_UNITS[compact]
    match = _OVF_PROGRAMMATIC_UNIT.fullmatch(compact)
    if match and int(match.group(2)) <= 60:
        return int(match.group(1)) ** int(match.group(2))
    return None

"""A flavor suggestion for a tier, from what its instances used over the last day.

The rule an operator would apply by eye: a tier whose busiest moment kept under a fifth of its vCPUs
for most of a day pays for CPUs it does not use; one that went past four fifths has no room left.
Either way the suggestion is the smallest flavor (of those the project may use) that holds the peaks
with headroom: the CPU peak at no more than 60% of the new vCPUs, the memory peak at no more than
80% of the new memory. A flavor's disk must hold the tier's (a disk grows, never shrinks).
Too short a watch says nothing but how much longer to wait.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from django.db.models import Q

from metrics.page_data import TierUse
from portal.moments import duration_text
from provisioning.models import Flavor, Stack

SMALLER_BELOW_PERCENT = 20.0
BIGGER_ABOVE_PERCENT = 80.0
# Memory used past this share of what the guest was given asks for more, whatever its CPU did.
MEMORY_FULL_PERCENT = 90.0
# After a change, the peaks should sit at most at these shares of the new size.
CPU_TARGET = 0.6
MEMORY_TARGET = 0.8
# How long a tier must have been watched before its peaks say anything about a day.
MIN_OBSERVED_SECONDS = 12 * 3600

Verdict = Literal["smaller", "bigger", "keep", "wait", "none_fits"]


@dataclass(frozen=True)
class Suggestion:
    verdict: Verdict
    reason: str
    flavor: Flavor | None = None


def flavors_for(stack: Stack) -> list[Flavor]:
    """The flavors the stack's project may use (its own and the shared ones), smallest first."""
    return list(Flavor.objects.filter(Q(project=stack.project_id) | Q(project__isnull=True)))


def _vcpus_text(count: int) -> str:
    return f"{count} vCPU" if count == 1 else f"{count} vCPUs"


def _observed(use: TierUse) -> str:
    peak = round(use.peak_cpu_percent or 0)
    text = f"peak {peak}% of {_vcpus_text(use.vcpus)} over {duration_text(use.observed_seconds)}"
    if use.peak_memory_used_mib is not None:
        text += f", memory peak {use.peak_memory_used_mib} MiB of {use.memory_mib} MiB"
    return text


def _needs(use: TierUse) -> tuple[int, int]:
    """The vCPUs and memory (MiB) that hold the peaks with headroom. Memory whose use is not known
    (a guest without a balloon driver) is not taken away: the need is what it has."""
    busy_vcpus = (use.peak_cpu_percent or 0) / 100 * use.vcpus
    vcpus = max(1, math.ceil(busy_vcpus / CPU_TARGET - 1e-9))
    if use.peak_memory_used_mib is None:
        return vcpus, use.memory_mib
    return vcpus, max(1, math.ceil(use.peak_memory_used_mib / MEMORY_TARGET))


def _covers(flavor: Flavor, *, vcpus: int, memory_mib: int, disk_gib: int) -> bool:
    return flavor.vcpus >= vcpus and flavor.memory_mib >= memory_mib and flavor.disk_gib >= disk_gib


def _within(flavor: Flavor, use: TierUse) -> bool:
    """No bigger than the tier in either way, and smaller in one."""
    size = (flavor.vcpus, flavor.memory_mib)
    return size != (use.vcpus, use.memory_mib) and flavor.vcpus <= use.vcpus and flavor.memory_mib <= use.memory_mib


def _smallest(flavors: Sequence[Flavor]) -> Flavor | None:
    return min(flavors, key=lambda f: (f.vcpus, f.memory_mib, f.disk_gib, f.name), default=None)


def suggest_flavor(*, use: TierUse, flavors: Sequence[Flavor]) -> Suggestion:
    """What to do with the tier's size: keep it, take a smaller or bigger flavor, or wait for more samples."""
    if use.peak_cpu_percent is None or use.observed_seconds < MIN_OBSERVED_SECONDS:
        missing = MIN_OBSERVED_SECONDS - use.observed_seconds
        watched = f"watched for {duration_text(use.observed_seconds)}" if use.samples else "no samples yet"
        needed = f"another {duration_text(missing)} of samples are needed"
        return Suggestion("wait", f"Too few samples to judge ({watched}): {needed}.")
    observed = _observed(use)
    vcpus, memory_mib = _needs(use)
    fitting = [f for f in flavors if _covers(f, vcpus=vcpus, memory_mib=memory_mib, disk_gib=use.disk_gib)]
    memory_full = (
        use.peak_memory_used_mib is not None and use.peak_memory_used_mib > MEMORY_FULL_PERCENT / 100 * use.memory_mib
    )
    if use.peak_cpu_percent > BIGGER_ABOVE_PERCENT or memory_full:
        bigger = _smallest([f for f in fitting if f.vcpus > use.vcpus or f.memory_mib > use.memory_mib])
        if bigger is None:
            return Suggestion("none_fits", f"{observed}: it needs more room, and no flavor of the project has it.")
        return Suggestion("bigger", f"{observed}: it has no room left; {bigger.name} holds the peaks.", bigger)
    if use.peak_cpu_percent < SMALLER_BELOW_PERCENT:
        smaller = _smallest([f for f in fitting if _within(f, use)])
        if smaller is not None:
            return Suggestion("smaller", f"{observed}: {smaller.name} is enough, with room to spare.", smaller)
        return Suggestion("keep", f"{observed}: no smaller flavor of the project holds the peaks with room to spare.")
    return Suggestion("keep", f"{observed}: the size fits what it uses.")

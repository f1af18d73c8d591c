"""What the driver offers for changing a domain's vCPUs, memory and disk size."""

from __future__ import annotations

from typing import Protocol


class ResizeOps(Protocol):
    """Part of ``HypervisorDriver``."""

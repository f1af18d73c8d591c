"""What the driver offers the sampler: every domain's and the host's figures, in one call per host."""

from __future__ import annotations

from typing import Protocol


class MetricsOps(Protocol):
    """Part of ``HypervisorDriver``."""

"""What the driver offers for moving a running domain to another host (live migration)."""

from __future__ import annotations

from typing import Protocol


class MigrationOps(Protocol):
    """Part of ``HypervisorDriver``."""

"""The libvirt side of ``MetricsOps``."""

from __future__ import annotations

from provisioning.drivers.libvirt_connection import LibvirtConnection


class LibvirtMetrics(LibvirtConnection):
    """Part of ``LibvirtDriver``."""

"""The libvirt side of ``MigrationOps``."""

from __future__ import annotations

from provisioning.drivers.libvirt_connection import LibvirtConnection


class LibvirtMigration(LibvirtConnection):
    """Part of ``LibvirtDriver``."""

"""The libvirt side of ``ResizeOps``."""

from __future__ import annotations

from provisioning.drivers.libvirt_connection import LibvirtConnection


class LibvirtResize(LibvirtConnection):
    """Part of ``LibvirtDriver``."""

"""Writes a ``DomainQos`` into domain XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provisioning.drivers.qos_types import DomainQos


def add_qos(domain: ET.Element, qos: DomainQos) -> None:
    """Add ``qos``'s limits to the domain element (its devices already in place)."""

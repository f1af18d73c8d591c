"""Fixtures of the libvirt driver tests: a fresh test:// host per test and a driver on it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.drivers.libvirt_driver import LibvirtDriver
from tests.factories import ApplianceVersionFactory, FeedFactory
from tests.provisioning.libvirt_doubles import NODE_XML, Opener


@pytest.fixture
def node_uri(tmp_path: Path) -> str:
    node = tmp_path / "node.xml"
    node.write_text(NODE_XML)
    return f"test://{node}"


@pytest.fixture
def opener() -> Opener:
    return Opener()


@pytest.fixture
def driver(node_uri: str, opener: Opener) -> Iterator[LibvirtDriver]:
    with LibvirtDriver(node_uri, connect=opener) as opened:
        yield opened


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "image.qcow2"
    path.write_bytes(secrets.token_bytes(2 * 1024 * 1024 + 123))
    return path


@pytest.fixture
def demo_catalog(ready_version):
    """demo-db, demo-app and demo-web in the shared catalog, their images cached."""
    feed = FeedFactory(project=None)
    versions = {}
    for identifier, port in (("demo-db", 5432), ("demo-app", 8080), ("demo-web", 80)):
        versions[identifier] = ApplianceVersionFactory(
            appliance__feed=feed,
            appliance__identifier=identifier,
            appliance__role=identifier.removeprefix("demo-"),
            image=ready_version.image,
            service_port=port,
            min_ram_mib=96,
        )
    return versions

"""Fixtures of the libvirt driver tests: a fresh test:// host per test and a driver on it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.drivers.libvirt_driver import LibvirtDriver
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

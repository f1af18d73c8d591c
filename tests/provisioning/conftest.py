"""Fixtures of the provisioning tests: a fresh test:// host and a driver on it for the libvirt driver's
tests, a cached demo catalog, the shipped classic template and a running stack of it, and the placement
tests' roomy project and launcher."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.demand import StackDemand
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.models import Status
from provisioning.services import templates
from provisioning.services.launch import stack_launch_template
from tests.factories import ApplianceVersionFactory, FeedFactory, ProjectFactory
from tests.provisioning.libvirt_doubles import NODE_XML, Opener
from tests.provisioning.placement_support import THREE_TIER, host_of, launch_stack


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
            delivered=True,
        )
    return versions


CLASSIC = templates.SHIPPED_TEMPLATES / "classic-three-tier.yaml"
SHOP_LEASE_SECONDS = 3600  # tests that need a lease shorter or longer than their policy set it themselves


@pytest.fixture
def classic(operator):
    """The shipped classic-three-tier template, made by the operator for every project."""
    return templates.template_create(user=operator, project=None, name="classic-three-tier", source=CLASSIC.read_text())


@pytest.fixture
def shop(member, project, test_host, demo_catalog, classic, step):
    """The classic three tiers, launched by the member on libvirt's test driver and running."""
    stack = step(
        lambda: stack_launch_template(
            user=member, project=project, name="shop", template=classic, lease_seconds=SHOP_LEASE_SECONDS
        )
    )
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    return stack


@pytest.fixture
def version(db):
    return ApplianceVersionFactory()


@pytest.fixture
def roomy_project(db):
    return ProjectFactory(
        name="roomy", max_stacks=1000, max_instances=1000, max_vcpus=1000, max_memory_mib=10**6, max_disk_gib=10**6
    )


@pytest.fixture
def place(roomy_project, version):
    """``place(demand, name=..., strategy=...)`` launches a stack of ``demand`` and says which host took it."""

    def launch(wanted: StackDemand = THREE_TIER, *, name: str = "s", strategy=None) -> str:
        return host_of(launch_stack(roomy_project, wanted, version=version, name=name, strategy=strategy))

    return launch

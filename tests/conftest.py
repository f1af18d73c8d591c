"""Shared fixtures: three fixed users around one project (owner, member, outsider), API clients."""

from __future__ import annotations

import secrets

import pytest
from rest_framework.test import APIClient

from portal.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.loopback_http import LoopbackServer

# live_portal (a daphne serving the portal) and chromium (Debian's, driven by Playwright), for any test.
pytest_plugins = ["tests.live_server", "tests.browser_pages"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "only_on(vendor, reason): runs only on that database (postgresql, sqlite); the reason names what "
        "the other lacks. The suite runs on PostgreSQL, and the launch modules on SQLite too (scripts/test.sh).",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("only_on")
    if marker is None:
        return
    from django.db import connection

    (vendor,) = marker.args
    if connection.vendor != vendor:
        pytest.skip(f"{vendor} only: {marker.kwargs['reason']}")


@pytest.fixture
def project(db):
    return ProjectFactory(name="alpha")


@pytest.fixture
def other_project(db):
    return ProjectFactory(name="beta")


@pytest.fixture
def owner(project):
    return MembershipFactory(project=project, role=Role.OWNER, user__username="olivia").user


@pytest.fixture
def member(project):
    return MembershipFactory(project=project, role=Role.MEMBER, user__username="mateo").user


@pytest.fixture
def viewer(project):
    return MembershipFactory(project=project, role=Role.VIEWER, user__username="vera").user


@pytest.fixture
def outsider(other_project):
    """Owner of another project, member of nothing in ``project``."""
    return MembershipFactory(project=other_project, role=Role.OWNER, user__username="oscar").user


@pytest.fixture
def operator(db):
    return UserFactory(username="root-op", is_staff=True, is_superuser=True)


@pytest.fixture
def step(django_capture_on_commit_callbacks):
    """``step(work)``: run ``work`` and what it leaves for after its commit (tasks run inline in tests)."""

    def run(work):
        with django_capture_on_commit_callbacks(execute=True):
            return work()

    return run


@pytest.fixture
def own_sign_in_budgets(settings):
    """Sign-in budgets that only this test spends: the ``shared`` cache under a key prefix of its own.

    Failed sign-ins are counted in the shared cache, which a test's rollback does not always empty
    (tests on committed data, servers in other threads and processes): a budget test must not start
    with places another test left taken. Returns the prefix, for another process that must share it.
    """
    prefix = f"test-{secrets.token_hex(6)}"
    settings.CACHES = {**settings.CACHES, "shared": {**settings.CACHES["shared"], "KEY_PREFIX": prefix}}
    return prefix


@pytest.fixture
def api():
    """``api(user)`` returns an APIClient authenticated as ``user`` (or anonymous for None)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def http_server(tmp_path):
    """A loopback HTTP server serving ``tmp_path / "www"`` plus ``server.routes``."""
    root = tmp_path / "www"
    root.mkdir()
    with LoopbackServer(root) as server:
        yield server


@pytest.fixture
def test_host(db):
    """A host on libvirt's in-memory test driver (its built-in pool is ``default-pool``).

    The test driver keeps ``test:///default`` state only while a connection is open, so one
    stays open for the whole test; the next test starts from a clean host.
    """
    from provisioning.drivers import open_driver
    from tests.factories import HostFactory

    with open_driver("test:///default") as keeper:
        keeper.host_info()
        yield HostFactory(name="test-host", uri="test:///default")


@pytest.fixture
def ready_version(db, tmp_path):
    """An appliance version whose image is already verified and cached (a real, tiny qcow2)."""
    import subprocess

    from catalog.models import CachedImage
    from tests.factories import ApplianceVersionFactory, CachedImageFactory

    path = tmp_path / "cached.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), "64M"], check=True, capture_output=True)
    image = CachedImageFactory(
        status=CachedImage.Status.READY,
        path=str(path),
        size_bytes=path.stat().st_size,
        virtual_size_bytes=64 * 1024 * 1024,
    )
    return ApplianceVersionFactory(image=image, appliance__title="Demo web", appliance__role="web", delivered=True)

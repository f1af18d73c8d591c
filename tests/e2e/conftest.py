"""Fixtures for end-to-end tests: real VMs under qemu:///system, a real django-q2 worker.

Everything a test makes (storage pool, volumes, domains, the worker process) is removed
afterwards, and only processes the fixtures started are stopped, by their process ids.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from catalog.demo_appliances import build_demo_appliances
from provisioning.drivers import HypervisorDriver, NotFound, open_driver
from provisioning.models import Stack, Status
from provisioning.services.launch import stack_launch
from tests.e2e.records import web_url
from tests.loopback_http import LoopbackServer
from tests.polling import page_text, wait_for
from tests.worker_process import running_worker, worker_env

SYSTEM_URI = "qemu:///system"
BUILD_CACHE = Path(settings.BASE_DIR) / "var" / "cache" / "demo-build"


@pytest.fixture(autouse=True)
def own_names_and_ports(settings, worker_id):
    """Parallel test workers have separate databases, so ids repeat between them: each test gets
    its own domain-name prefix and each worker its own range of published ports. Whatever
    carries the prefix (domains, then stack networks) is removed afterwards, even when the test
    failed half-way; volumes go with the test's own pool."""
    index = 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))
    settings.PUBLISH_PORT_RANGE = (20000 + 1000 * index, 20999 + 1000 * index)
    settings.DEPLOYMENT_NAME = f"e2e{secrets.token_hex(3)}"
    yield
    prefix = f"{settings.DEPLOYMENT_NAME}-"
    with open_driver(SYSTEM_URI) as driver:
        for domain in driver.list_domains():
            if domain.name.startswith(prefix):
                driver.destroy_domain(name=domain.name)
        for network in driver.list_networks():
            if network.startswith(prefix):
                driver.delete_network(name=network)


@pytest.fixture
def demo_feed(tmp_path):
    """The demo appliances, built (or reused from the cache) and served over HTTP on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    with LoopbackServer(root) as server:
        build_demo_appliances(
            out_dir=root, base_url=server.base_url, work_dir=BUILD_CACHE, log=lambda _: None, include_probe=True
        )
        yield f"{server.base_url}/feed.xml"


@pytest.fixture
def system_pool():
    """A storage pool of our own on the local libvirtd, deleted with everything in it afterwards."""
    name = f"portal-e2e-{secrets.token_hex(4)}"
    path = f"/var/lib/libvirt/images/{name}"
    yield name, path
    with open_driver(SYSTEM_URI) as driver:
        remove_pool(driver, name)


def remove_pool(driver: HypervisorDriver, name: str) -> None:
    """A test's storage pool and every volume in it; one that was never made (no host was registered
    with it) is not an error, so a clean-up never hides the failure that stopped the test early."""
    try:
        volumes = driver.list_volumes(pool=name)
    except NotFound:
        return
    for volume in volumes:
        driver.delete_volume(pool=name, name=volume.name)
    driver.delete_pool(name=name)


@pytest.fixture
def worker(transactional_db, monkeypatch, tmp_path):
    """The real clusters (``manage.py workers``) on the test database; tasks go through the ORM broker."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    # The worker's reconciler must only ever consider this test's domains (PORTAL_DEPLOYMENT, in worker_env).
    env = worker_env(PORTAL_WORKERS="2")
    with running_worker(log_path=tmp_path / "worker.log", env=env) as process:
        yield process
    connection.close()


@pytest.fixture
def demo_catalog(operator, project, demo_feed, system_pool, worker):
    """The local host registered and the demo feed imported into ``project``: appliances by identifier.

    Builds and teardowns run in the ``worker`` process, as in production.
    """
    return _local_host_and_demo_catalog(operator, project, demo_feed, system_pool)


@pytest.fixture
def inline_demo_catalog(operator, project, demo_feed, system_pool):
    """As ``demo_catalog``, but tasks run inline in the test process (with this process's settings)."""
    return _local_host_and_demo_catalog(operator, project, demo_feed, system_pool)


def _local_host_and_demo_catalog(operator, project, demo_feed, system_pool) -> dict:
    from catalog import services as catalog_services
    from catalog.models import Appliance, Feed
    from provisioning.services import hosts

    pool, pool_path = system_pool
    hosts.host_register(
        user=operator, name="local", uri=SYSTEM_URI, domain_type="qemu", storage_pool=pool, storage_pool_path=pool_path
    )
    feed = catalog_services.feed_subscribe_and_import(user=operator, url=demo_feed, project=project)
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    return {appliance.identifier: appliance for appliance in Appliance.objects.filter(feed=feed)}


@pytest.fixture
def launch_demo_web(member, project, inline_demo_catalog, step) -> Callable[[str], Stack]:
    """``launch_demo_web(name)``: a one-tier demo-web stack, running and serving its page."""
    version = inline_demo_catalog["demo-web"].versions.newest_first().first()

    def run(name: str) -> Stack:
        stack = step(
            lambda: stack_launch(user=member, project=project, name=name, appliance_version=version, lease_seconds=900)
        )
        stack.refresh_from_db()
        assert stack.status == Status.RUNNING, stack.status_reason
        wait_for(lambda: page_text(web_url(stack)), timeout=120, interval=0.5, what=f"{name}'s page")
        return stack

    return run

"""Two portals (deployments) share one real host and one storage pool without touching each other."""

from __future__ import annotations

import pytest

from provisioning.drivers import open_driver
from provisioning.models import Host, Status
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch
from provisioning.services.reconcile import reconcile_host
from tests.e2e.conftest import SYSTEM_URI
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e


def _state(pool: str) -> tuple[dict[str, str], set[str]]:
    with open_driver(SYSTEM_URI) as driver:
        domains = {d.name: d.state for d in driver.list_domains()}
        return domains, {v.name for v in driver.list_volumes(pool=pool)}


def test_two_deployments_launch_reconcile_and_delete_side_by_side(
    settings, member, project, inline_demo_catalog, system_pool, django_capture_on_commit_callbacks
):
    version = inline_demo_catalog["demo-web"].versions.newest_first().first()
    pool, _path = system_pool
    first = settings.DEPLOYMENT_NAME
    second = f"{first}-b"  # starts like the first: names alone must not decide ownership
    stacks, instances, urls = {}, {}, {}
    try:
        for number, deployment in enumerate((first, second)):
            settings.DEPLOYMENT_NAME = deployment
            with django_capture_on_commit_callbacks(execute=True):
                stack = stack_launch(
                    user=member, project=project, name=f"web{number}", appliance_version=version, lease_seconds=600
                )
            stack.refresh_from_db()
            assert stack.status == Status.RUNNING, stack.status_reason
            stacks[deployment], instances[deployment] = stack, stack.instances.get()
            urls[deployment] = instances[deployment].published_ports.get().url
        for deployment in (first, second):
            assert "demo-web appliance" in wait_for(
                lambda url=urls[deployment]: page_text(url), timeout=120, interval=0.5
            )

        host = Host.objects.get()
        for deployment in (first, second):
            settings.DEPLOYMENT_NAME = deployment
            result = reconcile_host(host=host)
            assert (result.removed, result.failed) == ([], [])

        settings.DEPLOYMENT_NAME = first
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.stack_destroy(user=member, stack=stacks[first])
        stacks[first].refresh_from_db()
        assert stacks[first].status == Status.DELETED, stacks[first].status_reason
        domains, volumes = _state(pool)
        assert instances[first].domain_name not in domains
        assert instances[first].volume_name not in volumes
        assert domains[instances[second].domain_name] == "running"
        assert instances[second].volume_name in volumes
        assert "demo-web appliance" in wait_for(lambda: page_text(urls[second]), timeout=30, interval=0.5)

        settings.DEPLOYMENT_NAME = second
        assert reconcile_host(host=host).removed == []
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.stack_destroy(user=member, stack=stacks[second])
        domains, volumes = _state(pool)
        assert not {instances[d].domain_name for d in (first, second)} & set(domains)
        # Only the base image (the cache) is left. Both deployments share this test's database, so the
        # second reused the first's base-volume row; real portals each upload their own.
        assert volumes == {f"{first}-base-{version.image.sha256[:32]}.qcow2"}
    finally:
        settings.DEPLOYMENT_NAME = first  # the fixture's clean-up finds both by this prefix

"""The reconciler removes this deployment's leftovers and nothing else."""

from __future__ import annotations

import pytest

from provisioning.drivers import DomainSpec, DomainTags, open_driver
from provisioning.models import Host
from provisioning.naming import overlay_volume_name
from provisioning.services import launch
from provisioning.services.reconcile import Leftover, reconcile_host
from tests.factories import HostFactory

POOL = "default-pool"


def _domain(driver, name: str, instance_id: int, deployment: str = "portal") -> None:
    tags = DomainTags(deployment=deployment, project_id=1, stack_id=1, instance_id=instance_id)
    driver.define_and_start(
        DomainSpec(name=name, domain_type="qemu", vcpus=1, memory_mib=64, disk_path="/default-pool/x", tags=tags)
    )


def _volume(driver, name: str) -> None:
    driver.upload_volume(pool=POOL, name=name, source_path=__file__, disk_format="raw", capacity_bytes=1024**2)


def _names(driver) -> tuple[set[str], set[str]]:
    return {d.name for d in driver.list_domains()}, {v.name for v in driver.list_volumes(pool=POOL)}


@pytest.fixture
def running_instance(member, project, test_host, ready_version, settings, django_capture_on_commit_callbacks):
    """An instance built by the portal (deployment "portal") on the test host."""
    settings.DEPLOYMENT_NAME = "portal"
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch.stack_launch(
            user=member, project=project, name="kept", appliance_version=ready_version, lease_seconds=600
        )
    return stack.instances.get()


def test_removes_unclaimed_leftovers_and_keeps_the_rest(running_instance, test_host):
    kept = running_instance
    with open_driver("test:///default") as driver:
        _domain(driver, "portal-i999999-web", 999999)  # a build whose row is gone
        _domain(driver, "otherportal-i1-web", 1, deployment="otherportal")  # not ours to judge
        # Another deployment whose name starts like ours, and its disk: the prefix alone proves nothing.
        _domain(driver, "portal-b-i7-web", 7, deployment="portal-b")
        _volume(driver, "portal-b-p1-s2-i7.qcow2")
        _volume(
            driver, overlay_volume_name(DomainTags(deployment="portal", project_id=1, stack_id=2, instance_id=999999))
        )
        _volume(driver, "someone-elses.img")

        result = reconcile_host(host=test_host)

        assert sorted(result.removed, key=lambda item: item.kind) == [
            Leftover("domain", "portal-i999999-web"),
            Leftover("volume", "portal-p1-s2-i999999.qcow2"),
        ]
        assert result.failed == []
        domains, volumes = _names(driver)
    assert {kept.domain_name, "otherportal-i1-web", "portal-b-i7-web"} <= domains
    assert "portal-i999999-web" not in domains
    assert {kept.volume_name, "someone-elses.img", "portal-b-p1-s2-i7.qcow2"} <= volumes
    assert any(name.startswith("portal-base-") for name in volumes)  # the image cache stays
    assert "portal-p1-s2-i999999.qcow2" not in volumes


def test_a_deleted_instance_no_longer_claims_its_domain(running_instance, test_host):
    from provisioning.models import Instance, Status

    instance = running_instance
    Instance.objects.filter(pk=instance.pk).update(status=Status.DELETED)  # as if teardown lost the host
    removed = {item.name for item in reconcile_host(host=test_host).removed}
    # Its stack still claims the network: only the instance's domain, disk and config drive go.
    assert removed == {instance.domain_name, instance.volume_name, instance.config_volume_name}


def test_an_unreachable_host_is_reported_not_raised(db):
    host = HostFactory(name="far", uri="qemu+tcp://127.0.0.1:1/system", domain_type=Host.DomainType.QEMU)
    result = reconcile_host(host=host)
    assert result.removed == []
    assert result.failed == ["cannot connect to the host: it did not answer"]


def test_two_deployments_share_a_host_and_a_pool_without_touching_each_other(
    member, project, test_host, ready_version, settings, django_capture_on_commit_callbacks
):
    """Deployments "portal" and "portal-b" launch, reconcile and delete side by side on one pool."""
    from provisioning.models import Status
    from provisioning.services import lifecycle

    stacks = {}
    for deployment in ("portal", "portal-b"):
        settings.DEPLOYMENT_NAME = deployment
        with django_capture_on_commit_callbacks(execute=True):
            stacks[deployment] = launch.stack_launch(
                user=member, project=project, name=f"s-{deployment}", appliance_version=ready_version, lease_seconds=600
            )
    instances = {deployment: stack.instances.get() for deployment, stack in stacks.items()}
    assert instances["portal-b"].volume_name.startswith("portal-b-p")
    with open_driver("test:///default") as driver:
        domains, volumes = _names(driver)
    for instance in instances.values():
        assert instance.domain_name in domains
        assert instance.volume_name in volumes
    # Both deployments share this test's database, so the second reuses the first's base-volume row;
    # real portals keep their own rows and each uploads its own base.
    assert {name for name in volumes if "-base-" in name} == {f"portal-base-{ready_version.image.sha256[:32]}.qcow2"}

    # Each deployment's rows are gone from the other's point of view: mark "portal"'s instance as
    # if its rows were lost, then let "portal-b" reconcile. It must remove nothing of "portal".
    from provisioning.models import Instance

    Instance.objects.filter(pk=instances["portal"].pk).update(status=Status.DELETED)
    settings.DEPLOYMENT_NAME = "portal-b"
    assert reconcile_host(host=test_host).removed == []
    settings.DEPLOYMENT_NAME = "portal"
    assert {item.name for item in reconcile_host(host=test_host).removed} == {
        instances["portal"].domain_name,
        instances["portal"].volume_name,
        instances["portal"].config_volume_name,
    }

    settings.DEPLOYMENT_NAME = "portal-b"
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stacks["portal-b"])
    stacks["portal-b"].refresh_from_db()
    assert stacks["portal-b"].status == Status.DELETED
    with open_driver("test:///default") as driver:
        domains, volumes = _names(driver)
    assert instances["portal-b"].domain_name not in domains
    assert instances["portal-b"].volume_name not in volumes
    assert "portal-base-" + ready_version.image.sha256[:32] + ".qcow2" in volumes  # the other's cache stays


def test_a_build_that_lands_while_the_host_is_listed_is_not_destroyed(
    member, project, test_host, ready_version, monkeypatch, django_capture_on_commit_callbacks
):
    """The claims are read after the host is listed: a domain defined in between is never an orphan."""
    from contextlib import contextmanager

    from provisioning.services import reconcile

    real_driver_for = reconcile.driver_for
    landed = []

    class BuildLandsWhileListing:
        """The host as the reconciler sees it, with a build finishing during the listing."""

        def __init__(self, driver):
            self._driver = driver

        def __getattr__(self, name):
            return getattr(self._driver, name)

        def list_domains(self):
            with django_capture_on_commit_callbacks(execute=True):
                stack = launch.stack_launch(
                    user=member, project=project, name="landing", appliance_version=ready_version, lease_seconds=600
                )
            landed.append(stack.instances.get())
            return self._driver.list_domains()

    @contextmanager
    def driver_for(host):
        with real_driver_for(host) as driver:
            yield BuildLandsWhileListing(driver)

    monkeypatch.setattr(reconcile, "driver_for", driver_for)
    result = reconcile_host(host=test_host)
    (instance,) = landed
    assert {item.name for item in result.removed} & {instance.domain_name, instance.volume_name} == set()
    with open_driver("test:///default") as driver:
        domains, volumes = _names(driver)
    assert instance.domain_name in domains
    assert instance.volume_name in volumes


def test_a_console_log_goes_with_its_instance_and_stays_while_the_disk_is_claimed(running_instance, test_host):
    kept = running_instance
    kept_log = kept.volume_name.removesuffix(".qcow2") + "-console.log"
    orphan = "portal-p1-s2-i999999-console.log"
    with open_driver("test:///default") as driver:
        for name in (kept_log, orphan, orphan + ".1", "portal-b-p1-s2-i7-console.log"):
            _volume(driver, name)

        removed = {item.name for item in reconcile_host(host=test_host).removed}

        assert removed == {orphan, orphan + ".1"}
        _domains, volumes = _names(driver)
    assert {kept_log, "portal-b-p1-s2-i7-console.log"} <= volumes

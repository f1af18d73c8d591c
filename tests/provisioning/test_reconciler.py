"""The reconciler removes this deployment's leftovers and nothing else."""

from __future__ import annotations

import pytest

from provisioning import services
from provisioning.drivers import DomainSpec, DomainTags, open_driver
from provisioning.drivers.domain_xml import overlay_volume_name
from provisioning.models import Host
from provisioning.reconciler import Leftover, reconcile_host
from tests.factories import HostFactory

POOL = "default-pool"


def _domain(driver, name: str, instance_id: int) -> None:
    tags = DomainTags(project_id=1, stack_id=1, instance_id=instance_id)
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
        stack = services.stack_launch(
            user=member, project=project, name="kept", appliance_version=ready_version, lease_seconds=600
        )
    return stack.instances.get()


def test_removes_unclaimed_leftovers_and_keeps_the_rest(running_instance, test_host):
    kept = running_instance
    with open_driver("test:///default") as driver:
        _domain(driver, "portal-i999999-web", 999999)  # a build whose row is gone
        _domain(driver, "otherportal-i1-web", 1)  # another deployment's: not ours to judge
        _volume(driver, overlay_volume_name(DomainTags(project_id=1, stack_id=2, instance_id=999999)))
        _volume(driver, "someone-elses.img")

        result = reconcile_host(host=test_host)

        assert sorted(result.removed, key=lambda item: item.kind) == [
            Leftover("domain", "portal-i999999-web"),
            Leftover("volume", "portal-p1-s2-i999999.qcow2"),
        ]
        assert result.failed == []
        domains, volumes = _names(driver)
    assert {kept.domain_name, "otherportal-i1-web"} <= domains
    assert "portal-i999999-web" not in domains
    assert {kept.volume_name, "someone-elses.img"} <= volumes
    assert any(name.startswith("portal-base-") for name in volumes)  # the image cache stays
    assert "portal-p1-s2-i999999.qcow2" not in volumes


def test_a_deleted_instance_no_longer_claims_its_domain(running_instance, test_host):
    from provisioning.models import Instance, Status

    instance = running_instance
    Instance.objects.filter(pk=instance.pk).update(status=Status.DELETED)  # as if teardown lost the host
    removed = {item.name for item in reconcile_host(host=test_host).removed}
    assert removed == {instance.domain_name, instance.volume_name}


def test_an_unreachable_host_is_reported_not_raised(db):
    host = HostFactory(name="far", uri="qemu+tcp://127.0.0.1:1/system", domain_type=Host.DomainType.QEMU)
    result = reconcile_host(host=host)
    assert result.removed == []
    assert "127.0.0.1:1" in result.failed[0]

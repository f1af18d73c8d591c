"""The disk a launch claims (quota, host) is known before the claim and is exactly the disk the build makes."""

from __future__ import annotations

import pytest

from catalog.models import ImageDelivery
from portal import errors
from provisioning.drivers import open_driver
from provisioning.models import Instance, Stack, Status
from tests.provisioning.image_support import GIB, MIB, launch, launch_tiers, published_version


@pytest.fixture
def cache(settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"


def overlay_capacity(instance: Instance) -> int:
    with open_driver("test:///default") as driver:
        volume = driver.find_volume(pool="default-pool", name=instance.volume_name)
    assert volume is not None
    return volume.capacity_bytes


def overlay_exists(instance: Instance) -> bool:
    with open_driver("test:///default") as driver:
        return driver.find_volume(pool="default-pool", name=instance.volume_name) is not None


def test_a_launch_whose_disk_size_nobody_knows_is_refused_and_the_image_measured_meanwhile(
    member, project, test_host, http_server, cache, step
):
    version = published_version(http_server, appliance="demo-web", size="3G")  # the feed declares no size

    def refused() -> None:
        with pytest.raises(errors.WrongState, match=r"the disk size of demo-web 1\.0 is not known yet"):
            launch(member, project, version, name="first")

    step(refused)
    assert not Stack.objects.exists()  # nothing claimed: no quota, no host, no port
    # The refusal queued the download (run inline here); now the size is known and claimed in full.
    assert ImageDelivery.objects.get(version=version).status == ImageDelivery.Status.DELIVERED
    stack = step(lambda: launch(member, project, version, name="second"))
    instance = stack.instances.get()
    assert instance.disk_gib == 3
    assert overlay_capacity(instance) == 3 * GIB


def test_the_declared_size_is_claimed_before_any_download_and_counts_against_the_quota(
    member, project, test_host, http_server, cache, step
):
    version = published_version(http_server, appliance="demo-web", declared_virtual_bytes=3 * GIB - 1)
    project.max_disk_gib = 2
    project.save()
    with pytest.raises(errors.QuotaExceeded, match="GiB of disk"):
        launch(member, project, version)
    project.max_disk_gib = 3
    project.save()
    stack = step(lambda: launch(member, project, version))
    instance = stack.instances.get()
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    assert instance.disk_gib == 3
    assert overlay_capacity(instance) == instance.disk_gib * GIB


def test_the_overlay_is_the_disk_the_launch_claimed(member, project, test_host, ready_version, step):
    stack = step(lambda: launch_tiers(member, project, "sized", (ready_version.appliance.identifier, 5)))
    instance = stack.instances.get()
    assert instance.disk_gib == 5
    assert overlay_capacity(instance) == 5 * GIB
    plain = step(lambda: launch(member, project, ready_version, name="plain")).instances.get()
    assert plain.disk_gib == 1  # a 64 MiB image rounds up to a whole GiB
    assert overlay_capacity(plain) == 1 * GIB


def test_an_image_larger_than_the_claimed_disk_is_refused_not_given_a_larger_one(
    member, project, test_host, http_server, cache, step
):
    published_version(http_server, appliance="demo-db", size="2G")  # a 2 GiB disk, its size declared nowhere
    stack = step(lambda: launch_tiers(member, project, "small", ("demo-db", 1)))
    stack.refresh_from_db()
    instance = stack.instances.get()
    assert stack.status == Status.ERROR
    assert f"larger than the 1 GiB {instance.name} was launched with" in stack.status_reason
    assert not overlay_exists(instance)


def test_an_image_larger_than_its_feed_declares_is_refused(member, project, test_host, http_server, cache, step):
    version = published_version(http_server, appliance="demo-web", size="16M", declared_virtual_bytes=MIB)
    stack = step(lambda: launch(member, project, version))
    stack.refresh_from_db()
    assert stack.status == Status.ERROR
    assert f"virtual size is {16 * MIB} bytes, more than the {MIB} its feed declares" in stack.status_reason
    assert not overlay_exists(stack.instances.get())
    assert version.image.versions.get().image_state.status == "error"

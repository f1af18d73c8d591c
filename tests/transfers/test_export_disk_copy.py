"""An instance's disk copied as one self-contained image, on libvirt's test driver; a stack held still meanwhile."""

from __future__ import annotations

import json
import subprocess

import pytest

from provisioning.drivers import open_driver
from provisioning.models import Status
from tests.provisioning import conftest as provisioning_fixtures
from transfers.disk_copy import DiskCopyError, file_sha256, instance_disk_copy, stack_paused


def _info(path) -> dict:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


# The running classic stack on libvirt's test driver, as the provisioning tests make it.
demo_catalog = provisioning_fixtures.demo_catalog
classic = provisioning_fixtures.classic
shop = provisioning_fixtures.shop


@pytest.fixture
def out(tmp_path):
    """A folder of its own for the copies (the cached base image lives in ``tmp_path``)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _states(stack) -> dict[str, str]:
    with open_driver("test:///default") as driver:
        return {i.role: driver.domain_info(name=i.domain_name).state for i in stack.instances.all()}


def test_an_unknown_format_is_refused_before_anything_is_read(shop, out):
    instance = shop.instances.get(role="db")
    with pytest.raises(DiskCopyError, match="cannot export a disk as 'vhdx'"):
        instance_disk_copy(instance, out / "disk.vhdx", fmt="vhdx")
    assert list(out.iterdir()) == []


def test_a_disk_gone_from_its_host_fails_and_leaves_nothing(shop, out):
    instance = shop.instances.get(role="db")
    with open_driver("test:///default") as driver:
        driver.delete_volume(pool=instance.host.storage_pool, name=instance.volume_name)
    with pytest.raises(DiskCopyError, match="missing from its host"):
        instance_disk_copy(instance, out / "disk.qcow2")
    assert list(out.iterdir()) == []


def test_an_image_evicted_from_the_cache_fails_and_leaves_nothing(shop, out):
    instance = shop.instances.get(role="db")
    instance.appliance_version.image.__class__.objects.filter(pk=instance.appliance_version.image_id).update(
        status="missing"
    )
    with pytest.raises(DiskCopyError, match="no longer in the image cache"):
        instance_disk_copy(instance, out / "disk.qcow2")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("fmt", "reported"), [("qcow2", "qcow2"), ("raw", "raw"), ("vmdk", "vmdk")])
def test_a_disk_on_a_simulated_host_is_its_base_image_as_one_file(shop, out, fmt, reported):
    instance = shop.instances.get(role="web")
    seen: list[tuple[int, int]] = []
    copy = instance_disk_copy(instance, out / f"web.{fmt}", fmt=fmt, progress=lambda d, t: seen.append((d, t)))
    info = _info(copy.path)
    assert info["format"] == reported
    assert "backing-filename" not in info
    assert info["virtual-size"] == copy.virtual_size_bytes >= 64 * 1024**2
    if fmt == "vmdk":
        assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert copy.size_bytes == copy.path.stat().st_size
    assert copy.sha256 == file_sha256(copy.path)
    assert seen
    assert seen[-1][0] == seen[-1][1] == copy.virtual_size_bytes
    assert [p.name for p in out.iterdir()] == [f"web.{fmt}"]


def test_a_running_stack_is_paused_for_the_block_and_resumed_after(shop):
    assert set(_states(shop).values()) == {"running"}
    with stack_paused(shop) as paused:
        assert {i.role for i in paused} == {"db", "app", "web"}
        assert set(_states(shop).values()) == {"paused"}
    assert set(_states(shop).values()) == {"running"}


def test_a_failing_block_still_resumes_the_stack(shop):
    with pytest.raises(RuntimeError), stack_paused(shop):
        raise RuntimeError("the copy failed")
    assert set(_states(shop).values()) == {"running"}


def test_only_the_instances_asked_for_are_paused(shop):
    db = shop.instances.get(role="db")
    with stack_paused(shop, instances=[db]) as paused:
        assert paused == [db]
        assert _states(shop) == {"db": "paused", "app": "running", "web": "running"}
    assert set(_states(shop).values()) == {"running"}


def test_a_tier_paused_by_someone_else_stays_paused(shop):
    web = shop.instances.get(role="web")
    with open_driver("test:///default") as driver:
        driver.pause_domain(name=web.domain_name)
    with stack_paused(shop) as paused:
        assert {i.role for i in paused} == {"db", "app"}
    assert _states(shop) == {"db": "running", "app": "running", "web": "paused"}


def test_a_stopped_stack_is_not_touched(shop):
    shop.status = Status.STOPPED
    with stack_paused(shop) as paused:
        assert paused == []
        assert set(_states(shop).values()) == {"running"}

"""Base images in a host's pool: uploaded once, uploaded again when gone, an abandoned upload taken
over, one left by an earlier install adopted; removed once no instance there needs them and they sat idle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import AuditEvent
from provisioning.drivers import open_driver
from provisioning.models import HostImage, Status
from provisioning.naming import base_volume_name
from provisioning.services import base_images, lifecycle
from provisioning.services.launch import stack_launch
from provisioning.services.reconcile import Leftover, reconcile_host

POOL = "default-pool"
IDLE = timedelta(hours=2)


@pytest.fixture(autouse=True)
def _idle_after_an_hour(settings):
    settings.BASE_VOLUME_IDLE_SECONDS = 3600


def _launch(member, project, version, name, capture):
    with capture(execute=True):
        stack = stack_launch(user=member, project=project, name=name, appliance_version=version, lease_seconds=600)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    return stack


def _destroy(member, stack, capture):
    with capture(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)


def _copy_left_by_a_deleted_stack(member, project, version, capture, *, last_used_ago: timedelta) -> None:
    stack = _launch(member, project, version, "gone", capture)
    _destroy(member, stack, capture)
    _last_used(last_used_ago)


def _pool_volumes() -> set[str]:
    with open_driver("test:///default") as driver:
        return {volume.name for volume in driver.list_volumes(pool=POOL)}


def _assert_copy_kept(version) -> None:
    assert HostImage.objects.get().state == HostImage.State.READY
    assert base_volume_name(version.image.sha256, "qcow2") in _pool_volumes()


def _last_used(ago: timedelta) -> None:
    HostImage.objects.update(last_used_at=timezone.now() - ago)


def _base_volume_name(version) -> str:
    return base_volume_name(version.image.sha256, "qcow2")


def test_base_volume_that_vanished_is_uploaded_again(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    _launch(member, project, ready_version, "first", django_capture_on_commit_callbacks)
    with open_driver("test:///default") as driver:
        driver.delete_volume(pool="default-pool", name=_base_volume_name(ready_version))  # an operator cleaned up
    second = _launch(member, project, ready_version, "second", django_capture_on_commit_callbacks)
    assert _base_volume_name(ready_version) in _pool_volumes()
    assert second.events.filter(message__startswith="uploading base image").exists()


def test_an_upload_abandoned_by_a_dead_worker_is_taken_over(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    abandoned = HostImage.objects.create(
        host=test_host, image=ready_version.image, volume_name=_base_volume_name(ready_version)
    )
    HostImage.objects.filter(pk=abandoned.pk).update(
        updated_at=timezone.now() - base_images.STALE_UPLOAD_AFTER - timedelta(seconds=1)
    )
    _launch(member, project, ready_version, "s", django_capture_on_commit_callbacks)
    assert HostImage.objects.get().state == HostImage.State.READY


def test_a_base_volume_already_in_the_pool_is_adopted(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    with open_driver("test:///default") as driver:  # left by an earlier installation
        driver.upload_volume(
            pool="default-pool",
            name=_base_volume_name(ready_version),
            source_path=ready_version.image.path,
            disk_format="qcow2",
            capacity_bytes=ready_version.image.virtual_size_bytes,
        )
    stack = _launch(member, project, ready_version, "s", django_capture_on_commit_callbacks)
    assert not stack.events.filter(message__startswith="uploading base image").exists()
    assert HostImage.objects.get().state == HostImage.State.READY


def test_a_build_records_when_it_used_the_base_volume(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    before = timezone.now()
    _launch(member, project, ready_version, "one", django_capture_on_commit_callbacks)
    copy = HostImage.objects.get()
    assert copy.state == HostImage.State.READY
    assert copy.last_used_at >= before


def test_an_idle_base_volume_no_instance_needs_is_removed_and_uploaded_again_when_needed(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    base = _base_volume_name(ready_version)
    _copy_left_by_a_deleted_stack(
        member, project, ready_version, django_capture_on_commit_callbacks, last_used_ago=IDLE
    )

    result = reconcile_host(host=test_host)

    assert result.removed == [Leftover("base_volume", base)]
    assert result.failed == []
    assert base not in _pool_volumes()
    assert not HostImage.objects.exists()
    assert AuditEvent.objects.filter(action="reconcile.remove_base_volume", detail__name=base).exists()

    again = _launch(member, project, ready_version, "again", django_capture_on_commit_callbacks)
    assert again.events.filter(message__startswith="uploading base image").exists()
    assert base in _pool_volumes()


def test_a_base_volume_an_active_instance_on_the_host_uses_stays_however_idle(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    _launch(member, project, ready_version, "running", django_capture_on_commit_callbacks)
    _last_used(timedelta(days=30))
    assert reconcile_host(host=test_host).removed == []
    _assert_copy_kept(ready_version)


def test_a_recently_used_base_volume_stays(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    _copy_left_by_a_deleted_stack(
        member, project, ready_version, django_capture_on_commit_callbacks, last_used_ago=timedelta(minutes=30)
    )
    assert reconcile_host(host=test_host).removed == []
    _assert_copy_kept(ready_version)


def test_a_removal_the_host_refuses_leaves_the_copy_ready_and_says_why(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    _copy_left_by_a_deleted_stack(
        member, project, ready_version, django_capture_on_commit_callbacks, last_used_ago=IDLE
    )
    test_host.storage_pool = "a-pool-that-went-away"  # as this worker sees it: every call on the pool fails

    with open_driver("test:///default") as driver:
        result = base_images.idle_base_volumes_remove(driver=driver, host=test_host)

    assert result.removed == []
    assert "a-pool-that-went-away" in result.failed[0]
    _assert_copy_kept(ready_version)


def test_a_build_takes_over_a_removal_whose_worker_stopped(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    _copy_left_by_a_deleted_stack(
        member, project, ready_version, django_capture_on_commit_callbacks, last_used_ago=IDLE
    )
    # The reconciler marked the copy "removing" and died before removing it.
    HostImage.objects.update(
        state=HostImage.State.REMOVING,
        updated_at=timezone.now() - base_images.STALE_UPLOAD_AFTER - timedelta(seconds=1),
    )

    second = _launch(member, project, ready_version, "second", django_capture_on_commit_callbacks)

    assert second.events.filter(message__startswith="uploading base image").exists()
    _assert_copy_kept(ready_version)

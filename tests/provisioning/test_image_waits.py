"""Builds and image downloads: each image in a task of its own, builds waiting for them without a worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.image_room import STALE_DOWNLOAD
from catalog.models import ImageDelivery, image_source_key
from provisioning.models import PublishedPort, Status
from provisioning.services import build, lifecycle
from tests.provisioning.image_support import GIB, launch, launch_tiers, published_version, queued, run_queued

BUILD = "provisioning.tasks.build_stack"
DOWNLOAD = "provisioning.tasks.download_image"


@pytest.fixture
def broker(monkeypatch, settings, tmp_path):
    """Tasks wait in the broker until the test runs them, as with a real worker."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"


def test_each_image_downloads_in_a_task_of_its_own_and_once_however_many_launches_want_it(
    member, project, test_host, http_server, broker, step
):
    web = published_version(http_server, appliance="demo-web")
    db = published_version(http_server, appliance="demo-db")
    both = step(lambda: launch_tiers(member, project, "both", ("demo-web", 1), ("demo-db", 1)))
    again = step(lambda: launch_tiers(member, project, "again", ("demo-web", 1)))
    assert step(lambda: run_queued(only=BUILD)) == [BUILD, BUILD]
    # No build downloads: each waits, and each image has one download task, not one per launch.
    assert sorted(queued(DOWNLOAD)) == sorted([(web.pk,), (db.pk,)])
    for stack in (both, again):
        stack.refresh_from_db()
        assert stack.status == Status.PENDING
        assert "waiting for the image of" in stack.events.last().message
    assert step(lambda: run_queued(only=DOWNLOAD)) == [DOWNLOAD, DOWNLOAD]
    # Each finished download queued again the builds that wait for it.
    assert set(queued(BUILD)) == {(both.pk,), (again.pk,)}
    step(lambda: run_queued(only=BUILD))
    for stack in (both, again):
        stack.refresh_from_db()
        assert stack.status == Status.RUNNING, stack.status_reason
    assert not queued(DOWNLOAD)


def test_a_download_that_fails_after_the_launch_fails_the_stack_with_its_reason(
    member, project, test_host, http_server, broker, step
):
    version = published_version(
        http_server, appliance="demo-web", declared_virtual_bytes=GIB, image_url="http://127.0.0.1:1/gone.qcow2"
    )
    stack = step(lambda: launch(member, project, version))
    step(lambda: run_queued(only=BUILD))
    step(lambda: run_queued(only=DOWNLOAD))
    step(lambda: run_queued(only=BUILD))
    stack.refresh_from_db()
    assert stack.status == Status.ERROR
    assert "cannot fetch http://127.0.0.1:1/gone.qcow2" in stack.status_reason
    assert stack.instances.get().status == Status.ERROR
    assert not PublishedPort.objects.filter(instance__stack=stack).exists()  # its port is free again


def test_an_older_failure_earns_the_new_launch_an_attempt_of_its_own(
    member, project, test_host, http_server, broker, step
):
    version = published_version(http_server, appliance="demo-web", declared_virtual_bytes=GIB)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    ImageDelivery.objects.create(
        version=version,
        source=image_source_key(version.image_url),
        status=ImageDelivery.Status.ERROR,
        error="the server was down an hour ago",
        started_at=an_hour_ago,
        finished_at=an_hour_ago,
    )
    stack = step(lambda: launch(member, project, version))
    step(lambda: run_queued(only=BUILD))
    assert queued(DOWNLOAD) == [(version.pk,)]
    step(lambda: run_queued(only=DOWNLOAD))
    step(lambda: run_queued(only=BUILD))
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason


def test_a_download_whose_worker_died_fails_the_stacks_launched_before_it_started(
    member, project, test_host, http_server, broker, step
):
    version = published_version(http_server, appliance="demo-web", declared_virtual_bytes=GIB)
    stack = step(lambda: launch(member, project, version))
    step(lambda: run_queued(only=BUILD))
    # The download task was killed mid-way: its claim stays "downloading" and is no longer touched.
    long_ago = timezone.now() - STALE_DOWNLOAD - timedelta(seconds=1)
    ImageDelivery.objects.filter(version=version).update(
        status="downloading", started_at=timezone.now(), updated_at=long_ago
    )
    step(lambda: build.stack_build(stack=stack))  # as the watchdog queues it again
    stack.refresh_from_db()
    assert stack.status == Status.ERROR
    assert "its worker went away" in stack.status_reason


def test_a_stack_deleted_while_its_image_downloads_is_never_built(
    member, project, test_host, http_server, broker, step
):
    version = published_version(http_server, appliance="demo-web", declared_virtual_bytes=GIB)
    stack = step(lambda: launch(member, project, version, name="racy"))
    step(lambda: run_queued(only=BUILD))
    step(lambda: lifecycle.stack_destroy(user=member, stack=stack))
    step(run_queued)  # the teardown, then the download, which finds no stack waiting
    stack.refresh_from_db()
    assert stack.status == Status.DELETED
    assert not queued(BUILD)
    assert "building" not in [event.message for event in stack.events.all()]
    assert ImageDelivery.objects.get(version=version).status == ImageDelivery.Status.DELIVERED


def test_with_tasks_run_inline_a_launch_still_ends_running(
    member, project, test_host, http_server, settings, tmp_path, step
):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    version = published_version(http_server, appliance="demo-web", declared_virtual_bytes=GIB)
    stack = step(lambda: launch(member, project, version))
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    assert stack.events.filter(message__startswith="waiting for the image of").count() == 1


def test_the_stack_page_shows_its_own_download_not_a_strangers(
    client, member, project, outsider, other_project, test_host, http_server, broker, step
):
    mine = published_version(http_server, appliance="demo-web", project=project, declared_virtual_bytes=GIB)
    theirs = published_version(
        http_server, appliance="demo-web", project=other_project, declared_virtual_bytes=GIB, make_image=False
    )
    assert theirs.image_id == mine.image_id
    stack = step(lambda: launch(member, project, mine))
    step(lambda: run_queued(only=BUILD))
    ImageDelivery.objects.filter(version=mine).update(
        status="downloading", bytes_done=5 * 1024**2, bytes_total=16 * 1024**2
    )
    client.force_login(member)
    page = client.get(reverse("stack-detail", args=[stack.pk])).content.decode()
    assert f"Downloading the image of {mine}" in page
    assert "5.0\xa0MB of 16.0\xa0MB" in page
    # Another project's launch of the same bytes shows nothing of this download.
    theirs_stack = step(lambda: launch(outsider, other_project, theirs, name="theirs"))
    client.force_login(outsider)
    page = client.get(reverse("stack-detail", args=[theirs_stack.pk])).content.decode()
    assert "Downloading the image" not in page

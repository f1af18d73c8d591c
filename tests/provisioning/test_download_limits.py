"""A project cannot hold every download worker: at most DOWNLOADS_PER_PROJECT image downloads at once."""

from __future__ import annotations

import re

import pytest
from django_q.models import OrmQ

from catalog.models import ImageDelivery
from portal.task_queues import Queue, cluster_name
from provisioning import tasks
from provisioning.models import Status
from provisioning.services.image_waits import builds_resume, image_download_queue
from provisioning.services.launch import stack_launch
from tests.factories import ApplianceVersionFactory

LIMIT_WORDS = re.escape("already has 1 image download queued or running (at most 1 at once)")


@pytest.fixture
def queued_for_workers(monkeypatch, settings):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    settings.DOWNLOADS_PER_PROJECT = 1


def _queued(queue: Queue, func: str) -> list[int]:
    tasks_ = [task for task in OrmQ.objects.filter(key=cluster_name(queue)) if task.func() == func]
    return sorted(task.task["args"][0] for task in tasks_)


def _version(project, name: str):
    return ApplianceVersionFactory(
        appliance__feed__project=project,
        appliance__identifier=name,
        image_url=f"https://images.example.org/{name}.qcow2",
        declared_virtual_bytes=64 * 1024 * 1024,  # so a launch may claim its disk before the download
    )


def test_a_projects_second_download_waits_and_says_why(
    queued_for_workers, project, other_project, django_capture_on_commit_callbacks
):
    first, second = _version(project, "first"), _version(project, "second")
    theirs, shared = _version(other_project, "theirs"), _version(None, "shared")
    with django_capture_on_commit_callbacks(execute=True):
        assert image_download_queue(first) == ""
        assert re.search(LIMIT_WORDS, image_download_queue(second))
        assert image_download_queue(first) == ""  # under way already: no second task, no refusal
        assert image_download_queue(theirs) == ""  # another project has a limit of its own
        assert image_download_queue(shared) == ""  # the shared catalog's images are not limited
    assert _queued(Queue.DOWNLOADS, "provisioning.tasks.download_image") == sorted([first.pk, theirs.pk, shared.pk])
    assert not ImageDelivery.objects.filter(version=second).exists()

    ImageDelivery.objects.filter(version=first).update(status=ImageDelivery.Status.ERROR)  # it ended
    with django_capture_on_commit_callbacks(execute=True):
        assert image_download_queue(second) == ""
    assert second.pk in _queued(Queue.DOWNLOADS, "provisioning.tasks.download_image")


def test_a_build_held_back_by_the_limit_goes_on_when_the_projects_download_ends(
    queued_for_workers, member, project, test_host, django_capture_on_commit_callbacks
):
    first, second = _version(project, "first"), _version(project, "second")
    with django_capture_on_commit_callbacks(execute=True):
        image_download_queue(first)
        stack = stack_launch(user=member, project=project, name="later", appliance_version=second, lease_seconds=600)
        tasks.build_stack(stack.pk)  # what the build worker runs
    stack.refresh_from_db()
    assert stack.status == Status.PENDING
    assert stack.events.filter(message__regex=LIMIT_WORDS).exists()
    OrmQ.objects.all().delete()
    assert builds_resume(version=first) == 1  # the end of the project's download, whatever its version
    assert _queued(Queue.BUILDS, "provisioning.tasks.build_stack") == [stack.pk]

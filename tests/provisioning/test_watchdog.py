"""Nothing stays stuck: the watchdog finishes what a dead worker left."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from provisioning.drivers import open_driver
from provisioning.models import Instance, Stack, StackEvent, Status
from provisioning.services.launch import stack_launch
from provisioning.services.watchdog import stacks_watchdog


def _launch(member, project, version, name="stuck"):
    return stack_launch(user=member, project=project, name=name, appliance_version=version, lease_seconds=600)


def test_a_build_whose_worker_died_is_failed_and_cleaned_up(
    member, project, test_host, ready_version, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stack = _launch(member, project, ready_version)
    instance = stack.instances.get()
    # As if the worker died right after starting the domain, before it could record "running".
    Stack.objects.filter(pk=stack.pk).update(status=Status.BUILDING)
    Instance.objects.filter(pk=instance.pk).update(status=Status.BUILDING)
    long_ago = timezone.now() - timedelta(seconds=settings.TASK_TIMEOUT_SECONDS + 180)
    StackEvent.objects.filter(stack=stack).update(created_at=long_ago)

    assert stacks_watchdog() == 1
    stack.refresh_from_db()
    assert stack.status == Status.ERROR
    assert stack.status_reason.startswith("the worker building this stack stopped (no progress for")
    assert Instance.objects.get(pk=instance.pk).status == Status.ERROR
    with open_driver("test:///default") as driver:
        assert instance.domain_name not in {d.name for d in driver.list_domains()}
        assert instance.volume_name not in {v.name for v in driver.list_volumes(pool="default-pool")}
        assert stack.network.name not in driver.list_networks()
    assert stacks_watchdog() == 0  # settled: nothing to do twice


def test_a_build_still_making_progress_is_left_alone(member, project, test_host, ready_version, settings):
    stack = _launch(member, project, ready_version)
    Stack.objects.filter(pk=stack.pk).update(status=Status.BUILDING)
    assert stacks_watchdog(now=timezone.now() + timedelta(seconds=settings.TASK_TIMEOUT_SECONDS)) == 0
    assert Stack.objects.get(pk=stack.pk).status == Status.BUILDING


def test_a_build_that_never_started_is_queued_again_once_per_period(
    member, project, test_host, ready_version, settings, monkeypatch
):
    from django_q.conf import Conf
    from django_q.models import OrmQ

    monkeypatch.setattr(Conf, "SYNC", False)  # the first build task was lost with its broker
    stack = _launch(member, project, ready_version)
    OrmQ.objects.all().delete()
    later = timezone.now() + timedelta(seconds=settings.TASK_TIMEOUT_SECONDS + 180)
    assert stacks_watchdog(now=later) == 1
    assert stacks_watchdog(now=later + timedelta(minutes=1)) == 0
    assert [task.func() for task in OrmQ.objects.all()] == ["provisioning.tasks.build_stack"]
    assert stack.events.filter(message="the build never started; queued again").count() == 1


def test_a_shelved_stack_whose_disk_copy_stalled_is_shelved_again(
    member, project, test_host, ready_version, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stack = _launch(member, project, ready_version, name="shelved")
    # As if an export or a capture of the shelved stack lost its worker while copying the disks.
    Stack.objects.filter(pk=stack.pk).update(status=Status.SNAPSHOTTING, status_before=Status.SHELVED)
    Instance.objects.filter(stack=stack).update(status=Status.SHELVED)
    long_ago = timezone.now() - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS + 60)
    StackEvent.objects.filter(stack=stack).update(created_at=long_ago)

    assert stacks_watchdog() == 1
    stack.refresh_from_db()
    assert stack.status == Status.SHELVED  # not "stopped": that would take vCPUs and memory back into the quota
    assert set(stack.instances.values_list("status", flat=True)) == {Status.SHELVED}

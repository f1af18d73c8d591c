"""A host's allocation counters (``Host.allocated_*``): raised by the claim, given back when instances
stop counting, recounted by the reconciler; at every step what the host's counting instances hold."""

from __future__ import annotations

import importlib
import socket

import pytest
from django.apps import apps as django_apps

from portal import errors
from provisioning import allocations
from provisioning.models import Host, Stack, Status
from provisioning.placement import host_loads
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch
from provisioning.services.reconcile import reconcile_host

NOTHING = (0, 0, 0, 0)


def launch(user, project, version, name="demo"):
    return stack_launch(user=user, project=project, name=name, appliance_version=version, lease_seconds=3600)


def counted(host: Host) -> tuple[int, int, int, int]:
    """What the host's counters say: vCPUs, MiB, GiB, instances."""
    return Host.objects.values_list(
        "allocated_vcpus", "allocated_memory_mib", "allocated_disk_gib", "allocated_instances"
    ).get(pk=host.pk)


def held(host: Host) -> tuple[int, int, int, int]:
    """What the host's instances in ``ACTIVE_STATUSES`` hold, summed from their rows."""
    (load,) = [load for load in host_loads() if load.host.pk == host.pk]
    return (load.vcpus, load.memory_mib, load.disk_gib, load.instances)


def test_a_launch_counts_its_stack_and_its_delete_gives_it_back(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch(member, project, ready_version)
    instance = stack.instances.get()
    assert counted(test_host) == held(test_host) == (instance.vcpus, instance.memory_mib, instance.disk_gib, 1)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)
    assert Stack.objects.get(pk=stack.pk).status == Status.DELETED
    assert counted(test_host) == held(test_host) == NOTHING


def test_a_failed_build_keeps_its_room_until_the_stack_is_deleted(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    ready_version.image_url = "http://127.0.0.1:1/missing.qcow2"  # nothing delivered yet: the build fails
    ready_version.declared_virtual_bytes = ready_version.image.virtual_size_bytes
    ready_version.save()
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch(member, project, ready_version)
    stack.refresh_from_db()
    assert stack.status == Status.ERROR
    assert counted(test_host) == held(test_host) != NOTHING  # as it keeps its quota
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)
    assert counted(test_host) == held(test_host) == NOTHING


def test_a_launch_that_fails_after_its_claim_counts_nothing(member, project, test_host, ready_version, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.PUBLISH_PORT_RANGE = (port, port)  # room for one published port: the second launch has none
    launch(member, project, ready_version, name="first")
    first = counted(test_host)
    with pytest.raises(errors.NoCapacity, match="free port"):
        launch(member, project, ready_version, name="second")  # claimed the host, then rolled back
    assert counted(test_host) == held(test_host) == first


def test_deleting_stack_rows_gives_their_room_back(member, project, test_host, ready_version):
    kept = launch(member, project, ready_version, name="kept")
    gone = launch(member, project, ready_version, name="gone")
    Stack.objects.filter(pk=gone.pk).delete()  # as an operator deleting it in the admin does
    assert counted(test_host) == held(test_host) == held_by(kept)
    Stack.objects.all().delete()
    assert counted(test_host) == held(test_host) == NOTHING


def held_by(stack: Stack) -> tuple[int, int, int, int]:
    instances = list(stack.instances.all())
    return (
        sum(i.vcpus for i in instances),
        sum(i.memory_mib for i in instances),
        sum(i.disk_gib for i in instances),
        len(instances),
    )


def test_deleting_a_deleted_stack_row_gives_nothing_back_twice(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    kept = launch(member, project, ready_version, name="kept")
    with django_capture_on_commit_callbacks(execute=True):
        gone = launch(member, project, ready_version, name="gone")
        lifecycle.stack_destroy(user=member, stack=gone)
    Stack.objects.filter(pk=gone.pk).delete()
    assert counted(test_host) == held(test_host) == held_by(kept)


def test_the_reconciler_recounts_counters_that_drifted(member, project, test_host, ready_version):
    launch(member, project, ready_version)
    right = counted(test_host)
    Host.objects.filter(pk=test_host.pk).update(allocated_vcpus=0, allocated_memory_mib=0)  # rows changed by hand
    generation = Host.objects.get(pk=test_host.pk).generation
    assert reconcile_host(host=test_host).recounted
    assert counted(test_host) == held(test_host) == right
    # A launch that weighed the host by the drifted counters must read it again before claiming it.
    assert Host.objects.get(pk=test_host.pk).generation == generation + 1
    assert not reconcile_host(host=test_host).recounted
    assert Host.objects.get(pk=test_host.pk).generation == generation + 1


def test_a_release_gives_back_only_what_still_counts(member, project, test_host, ready_version):
    stack = launch(member, project, ready_version)
    allocations.release(stack.instances.all())
    stack.instances.update(status=Status.DELETED)
    allocations.release(stack.instances.all())  # released again: they no longer count
    assert counted(test_host) == held(test_host) == NOTHING


def test_the_migration_counts_what_hosts_already_hold(member, project, test_host, ready_version):
    launch(member, project, ready_version)
    right = counted(test_host)
    Host.objects.update(allocated_vcpus=0, allocated_memory_mib=0, allocated_disk_gib=0, allocated_instances=0)
    migration = importlib.import_module("provisioning.migrations.0012_host_allocation_counters")
    migration.count_what_hosts_hold(django_apps, None)
    assert counted(test_host) == held(test_host) == right != NOTHING

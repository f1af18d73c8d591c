"""Launch, build, destroy and lease expiry on libvirt's test driver (a real driver with fake guests)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal import errors
from portal.models import RunEnd
from provisioning.drivers import open_driver
from provisioning.models import Host, Instance, PublishedPort, Stack, Status
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch
from tests.factories import HostFactory


def launch(user, project, version, name="demo", lease=3600):
    return stack_launch(user=user, project=project, name=name, appliance_version=version, lease_seconds=lease)


def domain_names(uri="test:///default") -> set[str]:
    with open_driver(uri) as driver:
        return {info.name for info in driver.list_domains()}


def volume_names(pool="default-pool", uri="test:///default") -> set[str]:
    with open_driver(uri) as driver:
        return {volume.name for volume in driver.list_volumes(pool=pool)}


def test_launch_builds_a_running_stack_with_a_published_port(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch(member, project, ready_version)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    instance = stack.instances.get()
    assert instance.status == Status.RUNNING
    assert instance.host == test_host
    assert instance.domain_name in domain_names()
    assert instance.volume_name in volume_names()
    port = instance.published_ports.get()
    assert port.guest_port == 80
    assert port.url == f"http://localhost:{port.host_port}/"  # PORTAL_ENDPOINT_HOST, never the portal's host
    with open_driver("test:///default") as driver:
        tags = driver.domain_info(name=instance.domain_name).tags
    assert (tags.project_id, tags.stack_id, tags.instance_id) == (project.pk, stack.pk, instance.pk)
    assert [e.message for e in stack.events.all()][-1] == "running"


def test_base_image_is_uploaded_once_per_host(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        launch(member, project, ready_version, name="one")
        launch(member, project, ready_version, name="two")
    assert test_host.images.count() == 1
    assert Stack.objects.filter(status=Status.RUNNING).count() == 2


def test_delete_removes_domain_and_volume(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch(member, project, ready_version)
    instance = stack.instances.get()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)
    stack.refresh_from_db()
    assert stack.status == Status.DELETED
    assert stack.deleted_at is not None
    assert instance.domain_name not in domain_names()
    assert instance.volume_name not in volume_names()
    assert not PublishedPort.objects.filter(instance__stack=stack).exists()


def test_viewer_cannot_launch_and_outsider_cannot_see(viewer, outsider, project, test_host, ready_version):
    with pytest.raises(errors.PermissionDenied, match="needs the member role in project alpha: ask"):
        launch(viewer, project, ready_version)
    with pytest.raises(errors.NotFound, match="no such project"):
        launch(outsider, project, ready_version)
    assert not Stack.objects.exists()


def test_outsider_cannot_delete(member, outsider, project, test_host, ready_version):
    stack = launch(member, project, ready_version)
    with pytest.raises(errors.NotFound, match="no such project"):
        lifecycle.stack_destroy(user=outsider, stack=stack)
    stack.refresh_from_db()
    assert stack.status == Status.PENDING


@pytest.mark.parametrize("name", ["", "UPPER", "-dash", "a" * 64, "x_y", "bad name"])
def test_bad_names_are_refused(member, project, test_host, ready_version, name):
    with pytest.raises(errors.Invalid, match="name must be"):
        launch(member, project, ready_version, name=name)
    assert not Stack.objects.exists()


def test_lease_out_of_range_is_refused(member, project, test_host, ready_version):
    with pytest.raises(errors.Invalid, match="lease must be"):
        launch(member, project, ready_version, lease=10)


def test_over_quota_launch_creates_nothing(member, project, test_host, ready_version):
    project.max_instances = 1
    project.save()
    launch(member, project, ready_version, name="first")
    with pytest.raises(errors.QuotaExceeded, match="may hold 1 instances, 1 are in use"):
        launch(member, project, ready_version, name="second")
    assert Stack.objects.count() == 1
    assert Instance.objects.count() == 1


def test_memory_quota_counts_the_appliance_minimum(member, project, test_host, ready_version):
    project.max_memory_mib = ready_version.min_ram_mib - 1
    project.save()
    with pytest.raises(errors.QuotaExceeded, match="MiB of memory"):
        launch(member, project, ready_version)


def test_no_usable_host_is_a_clear_error_and_creates_nothing(member, project, ready_version):
    HostFactory(name="down", uri="test:///down", healthy=False)
    HostFactory(name="off", uri="test:///off", enabled=False)
    with pytest.raises(errors.NoCapacity, match="no host is enabled and healthy"):
        launch(member, project, ready_version)
    assert not Stack.objects.exists()
    assert not PublishedPort.objects.exists()


def test_full_host_is_skipped(member, project, ready_version):
    # "full" has by far the most free memory, so placement prefers it, but only one vCPU.
    full = HostFactory(name="full", uri="test:///full", memory_mib=65536, cpus=1, cpu_overcommit=1)
    roomy = HostFactory(name="roomy", uri="test:///roomy", memory_mib=8192)
    assert launch(member, project, ready_version, name="a").instances.get().host == full
    assert launch(member, project, ready_version, name="b").instances.get().host == roomy
    Host.objects.filter(pk=roomy.pk).update(enabled=False)
    with pytest.raises(errors.NoCapacity, match="no host has room for 1 vCPU and 128 MiB"):
        launch(member, project, ready_version, name="c")
    assert Stack.objects.count() == 2


def test_placement_spreads_over_hosts(member, project, ready_version):
    # Capacities after the 512 MiB reserve: small 256 MiB, big 384 MiB; each instance takes 128 MiB.
    small = HostFactory(name="small", uri="test:///small", memory_mib=512 + 256)
    big = HostFactory(name="big", uri="test:///big", memory_mib=512 + 384)
    project.max_stacks = 10
    project.save()
    placed = [launch(member, project, ready_version, name=f"s{n}").instances.get().host for n in range(5)]
    # Most free memory first; on a tie the older host. Then both are full.
    assert [host.name for host in placed] == ["big", "small", "big", "small", "big"]
    with pytest.raises(errors.NoCapacity, match="no host has room"):
        launch(member, project, ready_version, name="s5")
    for host in (small, big):
        ports = list(PublishedPort.objects.filter(host=host).values_list("host_port", flat=True))
        assert len(ports) == len(set(ports)) == sum(h == host for h in placed)


def test_failed_build_cleans_up_and_says_why(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    # A new URL has delivered nothing yet, whatever the cache holds; the feed declares the disk size.
    ready_version.image_url = "http://127.0.0.1:1/missing.qcow2"
    ready_version.declared_virtual_bytes = ready_version.image.virtual_size_bytes
    ready_version.save()
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch(member, project, ready_version)
    stack.refresh_from_db()
    assert stack.status == Status.ERROR
    assert "cannot fetch http://127.0.0.1:1/missing.qcow2" in stack.status_reason
    instance = stack.instances.get()
    assert instance.domain_name not in domain_names()
    assert instance.volume_name not in volume_names()
    assert not PublishedPort.objects.exists()  # the port is free again
    assert stack.events.filter(is_error=True).exists()


def test_unreachable_host_fails_the_build_cleanly(member, project, ready_version, django_capture_on_commit_callbacks):
    HostFactory(name="gone", uri="qemu+tcp://127.0.0.1:1/system", domain_type=Host.DomainType.QEMU)
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch(member, project, ready_version)
    stack.refresh_from_db()
    assert stack.status == Status.ERROR
    assert "cannot connect to the host: it did not answer" in stack.status_reason


def test_expired_leases_are_destroyed(member, project, test_host, ready_version, django_capture_on_commit_callbacks):
    project.at_run_end = RunEnd.DELETE
    project.save()
    with django_capture_on_commit_callbacks(execute=True):
        expired = launch(member, project, ready_version, name="old")
        current = launch(member, project, ready_version, name="new")
    Stack.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.leases_expire() == 1
    expired.refresh_from_db()
    current.refresh_from_db()
    assert expired.status == Status.DELETED
    assert expired.status_reason == "lease expired"
    assert current.status == Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_parallel_launches_cannot_pass_the_quota(member, project, test_host, ready_version):
    """Six launches at once against a quota of two: exactly two win (row locks, not luck)."""
    project.max_instances = 2
    project.save()
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def attempt(index: int) -> None:
        try:
            barrier.wait()
            launch(member, project, ready_version, name=f"burst-{index}")
            outcomes.append("ok")
        except errors.QuotaExceeded:
            outcomes.append("quota")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "ok", "quota", "quota", "quota", "quota"]
    assert Instance.objects.count() == 2
    assert len(set(PublishedPort.objects.values_list("host_port", flat=True))) == 2


def test_a_stuck_teardown_is_tried_again(member, project, test_host, ready_version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        stack = launch(member, project, ready_version)
    # As if the worker died after the stack was marked for deletion.
    Stack.objects.filter(pk=stack.pk).update(
        status=Status.DELETING, updated_at=timezone.now() - lifecycle.STUCK_TEARDOWN_AFTER - timedelta(seconds=1)
    )
    lifecycle.leases_expire()
    stack.refresh_from_db()
    assert stack.status == Status.DELETED
    assert stack.instances.get().domain_name not in domain_names()


def test_host_health_refresh_marks_a_dead_host(db):
    from provisioning.tasks import refresh_hosts

    alive = HostFactory(name="alive", uri="test:///default", cpus=2, memory_mib=1024, healthy=False)
    dead = HostFactory(name="dead", uri="qemu+tcp://127.0.0.1:1/system", healthy=True)
    assert refresh_hosts() == 1
    alive.refresh_from_db()
    dead.refresh_from_db()
    assert alive.healthy
    assert (alive.cpus, alive.memory_mib) == (16, 3072)  # what libvirt's test node reports
    assert not dead.healthy
    assert dead.health_error == "cannot connect to the host: it did not answer"


def test_the_migrations_install_every_schedule_and_each_names_a_real_task(db):
    """What the schedule migrations write, checked by running them here: a transactional test of the
    same worker flushes every table, rows written at migrate time included."""
    from importlib import import_module

    from django.apps import apps
    from django_q.models import Schedule

    Schedule.objects.all().delete()
    for name in ("0002_schedules", "0006_watch_builds_schedule", "0009_prune_console_tickets_schedule"):
        for operation in import_module(f"provisioning.migrations.{name}").Migration.operations:
            operation.code(apps, None)
    schedules = dict(Schedule.objects.values_list("name", "func"))
    assert set(schedules) == {
        "expire-leases",
        "refresh-hosts",
        "refresh-feeds",
        "reconcile-hosts",
        "watch-builds",
        "prune-console-tickets",
    }
    for func in schedules.values():
        module, attribute = func.rsplit(".", 1)
        assert callable(getattr(import_module(module), attribute)), func


def test_admin_refuses_a_host_it_cannot_reach_and_reads_one_it_can(client, operator):
    client.force_login(operator)
    form = {
        "name": "far",
        "uri": "qemu+unix:///system?socket=/run/portal-no-such-host/libvirt-sock",
        "domain_type": "qemu",
        "enabled": "on",
        "storage_pool": "default-pool",
        "storage_pool_path": "/default-pool",
        "public_address": "127.0.0.1",
        "cpu_overcommit": "4",
        "memory_overcommit": "1",
        "disk_overcommit": "1",
        "memory_reserved_mib": "512",
        "console_address": "127.0.0.1",
        "migration_address": "127.0.0.1",
    }
    page = client.post("/admin/provisioning/host/add/", form)
    assert page.status_code == 200
    assert "cannot use host qemu+unix:///system?socket=/run/portal-no-such-host/libvirt-sock" in page.content.decode()
    assert not Host.objects.exists()

    with open_driver("test:///default"):  # keeps the test driver's state for the request
        response = client.post("/admin/provisioning/host/add/", {**form, "name": "near", "uri": "test:///default"})
    assert response.status_code == 302
    host = Host.objects.get()
    assert (host.name, host.healthy, host.cpus, host.hypervisor) == ("near", True, 16, "TEST")
    assert host.guests_bind_host_ports is False  # a simulated host: placement must not probe ports for it
    from portal.models import AuditEvent

    assert AuditEvent.objects.filter(action="host.register", actor=operator).count() == 1


def test_deleted_before_the_worker_runs_builds_nothing(
    member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued_build:
        stack = launch(member, project, ready_version)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)
    for callback in queued_build:  # the build task arrives late
        callback()
    stack.refresh_from_db()
    assert stack.status == Status.DELETED
    assert stack.instances.get().domain_name not in domain_names()
    assert not PublishedPort.objects.exists()


def test_a_stuck_teardown_is_retried_once_per_period_not_every_minute(
    member, project, test_host, ready_version, monkeypatch
):
    from django_q.conf import Conf
    from django_q.models import OrmQ

    monkeypatch.setattr(Conf, "SYNC", False)  # tasks wait in the broker: the worker is still down
    stack = launch(member, project, ready_version)
    Stack.objects.filter(pk=stack.pk).update(
        status=Status.DELETING, updated_at=timezone.now() - lifecycle.STUCK_TEARDOWN_AFTER - timedelta(seconds=1)
    )

    def teardowns_queued() -> int:
        return sum(task.func() == "provisioning.tasks.teardown_stack" for task in OrmQ.objects.all())

    retry_events = stack.events.filter(message="teardown is taking too long; trying again")
    lifecycle.leases_expire()
    lifecycle.leases_expire(now=timezone.now() + timedelta(minutes=1))
    assert (teardowns_queued(), retry_events.count()) == (1, 1)
    lifecycle.leases_expire(now=timezone.now() + lifecycle.STUCK_TEARDOWN_AFTER + timedelta(seconds=1))
    assert (teardowns_queued(), retry_events.count()) == (2, 2)

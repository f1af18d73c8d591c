"""A stack between launch and deletion, on libvirt's test driver: power, shelve, snapshots, leases.

Every action applies to all tiers, runs as a job while the stack says it is busy, and refuses
clearly what it cannot do. Real guests (records on disk surviving a revert, memory kept by a
shelve) are in the end-to-end tests.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal import errors
from portal.models import AuditEvent, RunEnd
from provisioning.drivers import open_driver
from provisioning.models import Host, Instance, Stack, StackSnapshot, Status
from provisioning.quotas import project_usage
from provisioning.services import lifecycle, power, shelving, snapshots
from provisioning.services.launch import stack_launch_template


def states(stack: Stack) -> dict[str, str]:
    with open_driver("test:///default") as driver:
        return {i.role: driver.domain_info(name=i.domain_name).state for i in stack.instances.all()}


def instance_statuses(stack: Stack) -> dict[str, str]:
    return {i.role: i.status for i in stack.instances.all()}


def event_messages(stack: Stack, containing: str) -> list[str]:
    return [e.message for e in stack.events.filter(message__contains=containing).order_by("id")]


def usage(project) -> dict[str, int]:
    return {line.key: line.used for line in project_usage(project)}


# --- refusals first -----------------------------------------------------------------------------


def test_a_viewer_and_an_outsider_cannot_act(shop, viewer, outsider, step):
    for user in (viewer, outsider):
        with pytest.raises((errors.PermissionDenied, errors.NotFound)):
            step(lambda u=user: power.stack_power(user=u, stack=shop, action="shutdown"))
        with pytest.raises((errors.PermissionDenied, errors.NotFound)):
            step(lambda u=user: shelving.stack_shelve(user=u, stack=shop))
        with pytest.raises((errors.PermissionDenied, errors.NotFound)):
            step(lambda u=user: snapshots.snapshot_create(user=u, stack=shop, name="nope"))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert not StackSnapshot.objects.exists()


def test_actions_are_refused_in_the_wrong_state_with_a_reason(shop, member, step):
    with pytest.raises(errors.WrongState, match="cannot unshelve a stack that is running"):
        shelving.stack_unshelve(user=member, stack=shop)
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    with pytest.raises(errors.WrongState, match="cannot snapshot a stack that is shelved"):
        snapshots.snapshot_create(user=member, stack=shop, name="later")
    with pytest.raises(errors.WrongState, match="cannot start a stack that is shelved"):
        power.stack_power(user=member, stack=shop, action="start")


def test_a_busy_stack_refuses_a_second_action(shop, member):
    # Without running the queued job, the stack stays busy: the next action is told to wait.
    power.stack_power(user=member, stack=shop, action="shutdown")
    shop.refresh_from_db()
    assert shop.status == Status.STOPPING
    with pytest.raises(errors.WrongState, match="stopping: wait until that is done"):
        shelving.stack_shelve(user=member, stack=shop)
    with pytest.raises(errors.WrongState):
        lifecycle.stack_destroy(user=member, stack=shop)


def test_a_snapshot_name_is_checked_and_unique(shop, member, step):
    with pytest.raises(errors.Invalid, match="name must be"):
        snapshots.snapshot_create(user=member, stack=shop, name="Bad Name!")
    step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="first"))
    with pytest.raises(errors.Invalid, match="already has a snapshot called 'first'"):
        step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="first"))


def test_snapshots_per_stack_are_capped(shop, member, step, settings):
    settings.SNAPSHOTS_PER_STACK = 2
    step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="one"))
    step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="two"))
    with pytest.raises(errors.Invalid, match="at most 2 snapshots"):
        step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="three"))


def test_a_snapshot_needs_room_in_the_disk_quota(shop, member, project, step):
    project.max_disk_gib = usage(project)["disk_gib"]
    project.save()
    with pytest.raises(errors.QuotaExceeded, match="GiB of disk"):
        step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="full"))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert not StackSnapshot.objects.exists()


# --- power --------------------------------------------------------------------------------------


def test_shutdown_stops_every_tier_in_reverse_order_and_start_brings_them_back_in_order(shop, member, step, settings):
    settings.SHUTDOWN_TIMEOUT_SECONDS = 1
    expires = shop.expires_at
    step(lambda: power.stack_power(user=member, stack=shop, action="shutdown"))
    shop.refresh_from_db()
    assert shop.status == Status.STOPPED, shop.status_reason
    assert set(states(shop).values()) == {"shutoff"}
    assert set(instance_statuses(shop).values()) == {Status.STOPPED}
    stopped = [m.split(":")[0] for m in event_messages(shop, ": shut down")]
    assert stopped == ["shop-web", "shop-app", "shop-db"]
    assert shop.expires_at == expires  # a stopped stack keeps its lease

    step(lambda: power.stack_power(user=member, stack=shop, action="start"))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert set(states(shop).values()) == {"running"}
    started = [m.split(":")[0] for m in event_messages(shop, ": started") if not m.endswith("on test-host")]
    assert started[-3:] == ["shop-db", "shop-app", "shop-web"]
    assert AuditEvent.objects.filter(action="stack.shutdown", actor=member).exists()


def test_one_instance_powers_off_alone_and_the_stack_stays_running(shop, member, step):
    db = shop.instances.get(role="db")
    step(lambda: power.stack_power(user=member, stack=shop, action="poweroff", instance=db))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert states(shop) == {"db": "shutoff", "app": "running", "web": "running"}
    assert instance_statuses(shop)["db"] == Status.STOPPED
    step(lambda: power.stack_power(user=member, stack=shop, action="start", instance=db))
    assert states(shop)["db"] == "running"


def test_a_stopped_stack_keeps_its_quota_and_host_capacity(shop, member, project, test_host, step):
    before = usage(project)
    step(lambda: power.stack_power(user=member, stack=shop, action="poweroff"))
    assert usage(project) == before
    test_host.refresh_from_db()
    assert test_host.allocated_vcpus == sum(i.vcpus for i in shop.instances.all())


def test_a_host_that_went_away_leaves_the_stack_as_it_was_with_the_reason(shop, member, step):
    Host.objects.filter(pk=shop.instances.first().host_id).update(uri="qemu+tcp://127.0.0.1:1/system")
    step(lambda: power.stack_power(user=member, stack=shop, action="shutdown"))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    failure = shop.events.filter(is_error=True).last()
    assert failure is not None
    assert failure.message.startswith("shutdown failed:")


# --- shelve -------------------------------------------------------------------------------------


def test_shelving_gives_back_vcpus_and_memory_and_keeps_the_disks(shop, member, project, test_host, step):
    before = usage(project)
    test_host.refresh_from_db()
    host_before = (test_host.allocated_vcpus, test_host.allocated_memory_mib, test_host.allocated_disk_gib)
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    assert shop.shelved_at is not None
    assert set(instance_statuses(shop).values()) == {Status.SHELVED}
    after = usage(project)
    assert after["vcpus"] == before["vcpus"] - sum(i.vcpus for i in shop.instances.all())
    assert after["memory_mib"] == before["memory_mib"] - sum(i.memory_mib for i in shop.instances.all())
    assert after["disk_gib"] == before["disk_gib"]
    assert after["instances"] == before["instances"]
    test_host.refresh_from_db()
    assert (test_host.allocated_vcpus, test_host.allocated_memory_mib) == (0, 0)
    assert test_host.allocated_disk_gib == host_before[2]
    # The storage lease counts from the moment of shelving.
    expected = shop.shelved_at + timedelta(seconds=project.storage_lease_seconds)
    assert abs((shop.expires_at - expected).total_seconds()) < 2
    with open_driver("test:///default") as driver:
        assert all(driver.has_saved_memory(name=i.domain_name) for i in shop.instances.all())


def test_unshelving_claims_again_and_resumes_every_tier(shop, member, project, test_host, step):
    before = usage(project)
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    step(lambda: shelving.stack_unshelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING, shop.status_reason
    assert set(states(shop).values()) == {"running"}
    assert usage(project) == before
    test_host.refresh_from_db()
    assert test_host.allocated_vcpus == sum(i.vcpus for i in shop.instances.all())
    assert shop.shelved_at is None


def test_unshelve_is_refused_over_quota_and_the_stack_stays_shelved(shop, member, project, step):
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    project.max_vcpus = 1
    project.save()
    with pytest.raises(errors.QuotaExceeded, match="unshelving it needs"):
        step(lambda: shelving.stack_unshelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED
    assert set(instance_statuses(shop).values()) == {Status.SHELVED}


def test_unshelve_is_refused_when_the_host_has_no_room(shop, member, test_host, step):
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    Host.objects.filter(pk=test_host.pk).update(draining=True)
    with pytest.raises(errors.NoCapacity, match="every enabled and healthy host is draining"):
        step(lambda: shelving.stack_unshelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED
    test_host.refresh_from_db()
    assert test_host.allocated_vcpus == 0


def _counters(host: Host) -> tuple[int, int, int, int]:
    host.refresh_from_db()
    return host.allocated_vcpus, host.allocated_memory_mib, host.allocated_disk_gib, host.allocated_instances


def test_unshelve_places_the_stack_on_another_host_when_its_own_is_full(shop, member, test_host, step):
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    other = Host.objects.create(
        name="roomy",
        uri="test:///roomy",
        domain_type="qemu",
        storage_pool="default-pool",
        cpus=64,
        memory_mib=65536,
        healthy=True,
    )
    Host.objects.filter(pk=test_host.pk).update(cpus=0)  # its own host has no vCPUs left for it
    instances = list(shop.instances.order_by("pk"))
    demand = (sum(i.vcpus for i in instances), sum(i.memory_mib for i in instances), sum(i.disk_gib for i in instances))
    # Accepted (the job is not run here): every row points at the new host and the counters moved.
    shelving.stack_unshelve(user=member, stack=shop)
    shop.refresh_from_db()
    assert (shop.status, shop.moving_from_id) == (Status.UNSHELVING, test_host.pk)
    assert {i.host_id for i in shop.instances.all()} == {other.pk}
    assert shop.network.host_id == other.pk
    assert {p.host_id for i in shop.instances.all() for p in i.published_ports.all()} == {other.pk}
    assert _counters(test_host) == (0, 0, 0, 0)
    assert _counters(other) == (*demand, len(instances))


def test_a_move_that_fails_puts_everything_back_and_the_stack_stays_shelved(shop, member, test_host, step):
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    before = _counters(test_host)
    port_before = {p.pk: p.host_port for i in shop.instances.all() for p in i.published_ports.all()}
    cidr_before = shop.network.cidr
    other = Host.objects.create(
        name="unreachable",
        uri="qemu+tcp://127.0.0.1:1/system",
        domain_type="qemu",
        cpus=64,
        memory_mib=65536,
        healthy=True,
    )
    Host.objects.filter(pk=test_host.pk).update(cpus=0)
    step(lambda: shelving.stack_unshelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    assert shop.moving_from_id is None
    assert {i.host_id for i in shop.instances.all()} == {test_host.pk}
    assert set(instance_statuses(shop).values()) == {Status.SHELVED}
    assert shop.network.host_id == test_host.pk
    assert shop.network.cidr == cidr_before
    assert {p.pk: p.host_port for i in shop.instances.all() for p in i.published_ports.all()} == port_before
    assert _counters(test_host) == before
    assert _counters(other) == (0, 0, 0, 0)
    failure = shop.events.filter(is_error=True).last()
    assert failure is not None
    assert failure.message.startswith("unshelve failed: the move to another host failed")
    # Its guests and disks are still on its own host, memory kept.
    with open_driver("test:///default") as driver:
        assert all(driver.has_saved_memory(name=i.domain_name) for i in shop.instances.all())


def test_a_stack_with_snapshots_does_not_move(shop, member, test_host, step):
    step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="keep"))
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    Host.objects.create(name="roomy", uri="test:///roomy", domain_type="qemu", cpus=64, memory_mib=65536, healthy=True)
    Host.objects.filter(pk=test_host.pk).update(cpus=0)
    with pytest.raises(errors.NoCapacity, match="a stack with snapshots cannot move"):
        step(lambda: shelving.stack_unshelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED


def test_the_reconciler_keeps_the_disks_of_a_stack_moving_away(shop, member, test_host, step):
    from provisioning.services.reconcile import find_leftovers

    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    Host.objects.create(name="roomy", uri="test:///roomy", domain_type="qemu", cpus=64, memory_mib=65536, healthy=True)
    Host.objects.filter(pk=test_host.pk).update(cpus=0)
    shelving.stack_unshelve(user=member, stack=shop)  # accepted; the move has not run
    with open_driver("test:///default") as driver:
        leftovers = find_leftovers(driver=driver, host=test_host)
    assert leftovers == []


def test_the_reconciler_recount_agrees_with_a_shelved_stack(shop, member, test_host, step):
    from provisioning import allocations

    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    assert allocations.recount(host=test_host) is False  # the counters already say what instances hold


# --- snapshots ----------------------------------------------------------------------------------


def test_a_snapshot_is_taken_of_every_tier_and_the_stack_goes_back_to_running(shop, member, step):
    made = step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="before-upgrade", memory=True))
    made.refresh_from_db()
    shop.refresh_from_db()
    assert made.status == StackSnapshot.State.READY, made.status_reason
    assert shop.status == Status.RUNNING
    with open_driver("test:///default") as driver:
        for instance in shop.instances.all():
            assert [s.name for s in driver.list_snapshots(domain=instance.domain_name)] == [made.libvirt_name]
    assert set(states(shop).values()) == {"running"}  # paused for the snapshot, resumed after


def test_revert_and_delete_act_on_every_tier(shop, member, step):
    made = step(lambda: snapshots.snapshot_create(user=member, stack=shop, name="good"))
    step(lambda: snapshots.snapshot_revert(user=member, stack=shop, snapshot=made))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING, shop.status_reason
    assert set(states(shop).values()) == {"running"}
    assert event_messages(shop, "reverted to snapshot 'good'")
    step(lambda: snapshots.snapshot_delete(user=member, stack=shop, snapshot=made))
    assert not StackSnapshot.objects.filter(pk=made.pk).exists()
    with open_driver("test:///default") as driver:
        for instance in shop.instances.all():
            assert driver.list_snapshots(domain=instance.domain_name) == []


def test_another_projects_member_cannot_revert_with_a_snapshot_of_theirs(shop, outsider, step):
    made = StackSnapshot.objects.create(stack=shop, name="x", libvirt_name="x", status=StackSnapshot.State.READY)
    with pytest.raises((errors.PermissionDenied, errors.NotFound)):
        step(lambda: snapshots.snapshot_revert(user=outsider, stack=shop, snapshot=made))


def test_snapshot_space_counts_against_the_disk_quota(shop, project):
    before = usage(project)["disk_gib"]
    StackSnapshot.objects.create(stack=shop, name="big", libvirt_name="big", size_bytes=3 * 1024**3 + 1)
    assert usage(project)["disk_gib"] == before + 4


# --- leases -------------------------------------------------------------------------------------


def test_a_run_lease_that_ends_shelves_the_stack_and_the_storage_lease_deletes_it(shop, project, member, step):
    from notices.models import Notification

    assert project.at_run_end == RunEnd.SHELVE
    Stack.objects.filter(pk=shop.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert step(lambda: lifecycle.leases_expire()) == 1
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    assert shop.expires_at > timezone.now()
    Stack.objects.filter(pk=shop.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    step(lambda: lifecycle.leases_expire())
    shop.refresh_from_db()
    assert shop.status == Status.DELETED
    assert not Instance.objects.filter(stack=shop).exclude(status=Status.DELETED).exists()
    # Every member who may act was told each step, in order.
    told = list(
        Notification.objects.filter(user=member, stack_id=shop.pk).order_by("id").values_list("event", flat=True)
    )
    assert told == ["lease.ended", "stack.shelved", "lease.ended", "stack.deleted"]


def test_a_project_that_deletes_at_run_end_deletes(shop, project, step):
    project.at_run_end = RunEnd.DELETE
    project.save()
    Stack.objects.filter(pk=shop.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    step(lambda: lifecycle.leases_expire())
    shop.refresh_from_db()
    assert shop.status == Status.DELETED


def test_extend_counts_from_now_within_the_policy_and_never_shortens(shop, member, project, step):
    project.max_extension_seconds = 3600
    project.save()
    # A lease shorter than one extension: extending takes it to an hour from now.
    Stack.objects.filter(pk=shop.pk).update(expires_at=timezone.now() + timedelta(minutes=10))
    shop.refresh_from_db()
    extended = lifecycle.stack_extend(user=member, stack=shop)
    assert abs((extended.expires_at - (timezone.now() + timedelta(hours=1))).total_seconds()) < 5
    with pytest.raises(errors.Invalid, match="at most 1 hour at a time"):
        lifecycle.stack_renew_lease(user=member, stack=shop, lease_seconds=2 * 3600)
    # A lease already longer than one extension is not cut by extending.
    Stack.objects.filter(pk=shop.pk).update(expires_at=timezone.now() + timedelta(hours=3))
    with pytest.raises(errors.Invalid, match="cannot be extended"):
        lifecycle.stack_extend(user=member, stack=shop)


def test_extend_stops_at_the_longest_life(shop, member, project):
    project.max_lease_seconds = 2 * 3600  # beyond the stack's lease, closer than one extension
    project.max_extension_seconds = 24 * 3600
    project.save()
    extended = lifecycle.stack_extend(user=member, stack=shop)
    assert extended.expires_at == shop.created_at + timedelta(seconds=2 * 3600)
    with pytest.raises(errors.Invalid, match="cannot be extended"):
        lifecycle.stack_extend(user=member, stack=shop)


def test_a_launch_without_a_lease_gets_the_policy_run_lease(member, project, test_host, demo_catalog, classic, step):
    project.run_lease_seconds = 1800
    project.save()
    stack = step(lambda: stack_launch_template(user=member, project=project, name="pol", template=classic))
    assert abs((stack.expires_at - stack.created_at).total_seconds() - 1800) < 5

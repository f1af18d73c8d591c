"""Accepting a live migration (who may, from which states, to which hosts, what it claims) and a move that
fails, on libvirt's test driver: its hosts cannot migrate, so the tests that need a host that can say so
stand its driver in for one that can (the driver's public ``supports_live_migration``)."""

from __future__ import annotations

import pytest

from portal import errors
from portal.models import AuditEvent
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.models import Host, Operation, Stack, Status
from provisioning.services import migration
from tests.factories import HostFactory
from tests.provisioning.libvirt_doubles import NODE_POOL, NODE_POOL_PATH, NODE_XML

pytestmark = pytest.mark.django_db

COUNTERS = ("allocated_vcpus", "allocated_memory_mib", "allocated_disk_gib", "allocated_instances")


@pytest.fixture
def can_migrate(monkeypatch):
    monkeypatch.setattr(LibvirtDriver, "supports_live_migration", lambda self: True)


@pytest.fixture
def second(db, node_uri):
    """Another simulated host (libvirt's test driver on a node file of its own)."""
    return HostFactory(name="second", uri=node_uri, storage_pool=NODE_POOL, storage_pool_path=NODE_POOL_PATH)


def counters(host: Host) -> tuple[int, ...]:
    host.refresh_from_db()
    return tuple(getattr(host, name) for name in COUNTERS)


def source_of(stack: Stack) -> Host:
    return stack.instances.first().host


def test_only_operators_move_stacks(shop, member, owner, second, can_migrate):
    for user in (member, owner):
        with pytest.raises(errors.PermissionDenied):
            migration.begin_stack_migration(user=user, stack=shop, target=second)
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING


def test_a_host_whose_hypervisor_cannot_migrate_is_refused(shop, operator, second):
    # libvirt's test driver lists no live migration among its host's capabilities.
    with pytest.raises(errors.WrongState, match="cannot move running guests"):
        migration.begin_stack_migration(user=operator, stack=shop, target=second)
    assert not Operation.objects.exists()
    assert counters(second) == (0, 0, 0, 0)


@pytest.mark.parametrize("status", [Status.STOPPED, Status.SHELVED, Status.MIGRATING, Status.STOPPING])
def test_only_a_running_stack_that_is_not_busy_moves(shop, operator, second, can_migrate, status):
    Stack.objects.filter(pk=shop.pk).update(status=status)
    with pytest.raises(errors.WrongState):
        migration.begin_stack_migration(user=operator, stack=shop, target=second)
    assert counters(second) == (0, 0, 0, 0)


def test_the_named_target_must_be_another_usable_host_with_room(shop, operator, second, can_migrate):
    with pytest.raises(errors.Invalid, match="already runs on"):
        migration.begin_stack_migration(user=operator, stack=shop, target=source_of(shop))
    for change in ({"draining": True}, {"enabled": False}, {"maintenance": True}, {"healthy": False}):
        Host.objects.filter(pk=second.pk).update(**change)
        second.refresh_from_db()
        with pytest.raises(errors.WrongState):
            migration.begin_stack_migration(user=operator, stack=shop, target=second)
        Host.objects.filter(pk=second.pk).update(draining=False, enabled=True, maintenance=False, healthy=True)
        second.refresh_from_db()
    Host.objects.filter(pk=second.pk).update(cpus=0)
    second.refresh_from_db()
    with pytest.raises(errors.NoCapacity, match="second has 0 vCPU free"):
        migration.begin_stack_migration(user=operator, stack=shop, target=second)
    assert counters(second) == (0, 0, 0, 0)
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING


def test_placement_chooses_another_host_with_room_or_says_none_has(shop, operator, second, can_migrate, tmp_path):
    Host.objects.filter(pk=second.pk).update(draining=True)
    with pytest.raises(errors.NoCapacity, match="is enabled, healthy, not draining"):
        migration.begin_stack_migration(user=operator, stack=shop)
    Host.objects.filter(pk=second.pk).update(draining=False, memory_mib=64)
    with pytest.raises(errors.NoCapacity, match=r"second has \d+ MiB of memory free"):
        migration.begin_stack_migration(user=operator, stack=shop)
    node = tmp_path / "roomy.xml"
    node.write_text(NODE_XML)
    roomy = HostFactory(name="roomy", uri=f"test://{node}", storage_pool=NODE_POOL)
    operation = migration.begin_stack_migration(user=operator, stack=shop, queue=False)
    assert operation.target_host_id == roomy.pk


def test_accepting_a_move_claims_the_target_and_keeps_the_source(shop, operator, second, can_migrate):
    source = source_of(shop)
    before = counters(source)
    operation = migration.begin_stack_migration(user=operator, stack=shop, target=second, queue=False)

    assert counters(second) == before  # the whole stack claimed on the target...
    assert counters(source) == before  # ...while the source keeps it until the move ends
    shop.refresh_from_db()
    assert (shop.status, shop.status_before, shop.moving_from_id) == (Status.MIGRATING, Status.RUNNING, source.pk)
    assert (operation.kind, operation.status) == (Operation.Kind.MIGRATE_STACK, Operation.State.PENDING)
    assert (operation.host_id, operation.target_host_id, operation.stack_id) == (source.pk, second.pk, shop.pk)
    assert operation.request == {"host": "second"}
    assert AuditEvent.objects.filter(action="stack.migrate").count() == 1
    assert shop.events.filter(message__startswith="move to second").exists()
    with pytest.raises(errors.WrongState, match="wait until"):  # one move at a time
        migration.begin_stack_migration(user=operator, stack=shop, target=second)


def test_moving_an_instance_moves_its_stack_and_says_so(shop, operator, second, can_migrate):
    web = shop.instances.get(role="web")
    operation = migration.begin_stack_migration(user=operator, stack=shop, instance=web, target=second, queue=False)
    assert (operation.kind, operation.instance_id) == (Operation.Kind.MIGRATE_INSTANCE, web.pk)
    assert "share one private network on one host" in operation.detail
    other = HostFactory(name="other", uri="test:///other")
    with pytest.raises(errors.Invalid, match="not part of that stack"):
        migration.begin_stack_migration(user=operator, stack=Stack(pk=0), instance=web, target=other)


def test_a_move_that_fails_leaves_the_stack_running_on_its_source(shop, operator, second, can_migrate):
    source = source_of(shop)
    before = counters(source)
    ports = {p.pk: (p.host_id, p.host_port) for i in shop.instances.all() for p in i.published_ports.all()}
    operation = migration.begin_stack_migration(user=operator, stack=shop, target=second, queue=False)

    # The test driver's domains cannot migrate: the driver refuses when the move begins.
    assert migration.run_stack_migration(stack_id=shop.pk, operation_id=operation.pk) is False

    operation.refresh_from_db()
    shop.refresh_from_db()
    assert operation.status == Operation.State.FAILED
    assert operation.detail.startswith("could not move to second: ")
    assert "libvirt" not in operation.detail.lower()
    assert (shop.status, shop.moving_from_id, shop.status_reason) == (Status.RUNNING, None, "")
    assert {i.host_id for i in shop.instances.all()} == {source.pk}
    assert {p.pk: (p.host_id, p.host_port) for i in shop.instances.all() for p in i.published_ports.all()} == ports
    assert counters(second) == (0, 0, 0, 0)
    assert counters(source) == before
    assert shop.events.filter(is_error=True, message__startswith="could not move to second").exists()
    # A job that runs again finds nothing to do.
    assert migration.run_stack_migration(stack_id=shop.pk, operation_id=operation.pk) is False

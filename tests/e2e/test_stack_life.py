"""The life of a real three-tier stack between launch and deletion, with records worth keeping.

Records go in through the web tier (web -> app -> db, kept on the db tier's disk). A snapshot and a
revert bring back exactly what was there; a shut-down and a start keep them; a shelve gives the
host's vCPUs and memory back and an unshelve resumes the guests with the records still there; a run
lease that ends shelves the stack and its storage lease deletes it, disks and all.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.drivers import open_driver
from provisioning.models import Host, Stack, StackSnapshot, Status
from provisioning.services import lifecycle, power, shelving, snapshots
from tests.e2e.conftest import SYSTEM_URI
from tests.e2e.records import launch_classic, page_with, post_record, web_url

pytestmark = pytest.mark.e2e


def add_record(stack: Stack, text: str) -> int:
    return post_record(web_url(stack), text)[0]


def _run(capture, work):
    with capture(execute=True):
        result = work()
    return result


def test_records_survive_snapshot_revert_power_and_shelve_and_the_leases_end_it(
    operator, member, project, inline_demo_catalog, system_pool, settings, django_capture_on_commit_callbacks
):
    settings.SHUTDOWN_TIMEOUT_SECONDS = 60
    run = lambda work: _run(django_capture_on_commit_callbacks, work)  # noqa: E731
    pool, _path = system_pool
    shop = launch_classic(operator=operator, member=member, project=project, capture=django_capture_on_commit_callbacks)
    db_name = shop.instances.get(role="db").name
    page_with(shop, db_name, what="the web tier's page showing the whole chain")

    assert add_record(shop, "first record") in (200, 201)
    page_with(shop, "first record", what="the first record on the page")

    made = run(lambda: snapshots.snapshot_create(user=member, stack=shop, name="one-record"))
    made.refresh_from_db()
    assert made.status == StackSnapshot.State.READY, made.status_reason
    assert made.size_bytes > 0
    assert add_record(shop, "second record") in (200, 201)
    page_with(shop, "first record", "second record", what="both records on the page")

    run(lambda: snapshots.snapshot_revert(user=member, stack=shop, snapshot=made))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING, shop.status_reason
    page_with(shop, "first record", absent=("second record",), what="only the first record after the revert")

    # A shut-down (ACPI, the guests power themselves off) and a start keep the records.
    run(lambda: power.stack_power(user=member, stack=shop, action="shutdown"))
    shop.refresh_from_db()
    assert shop.status == Status.STOPPED, shop.status_reason
    assert not shop.events.filter(message__contains="did not shut down").exists()
    run(lambda: power.stack_power(user=member, stack=shop, action="start"))
    page_with(shop, "first record", db_name, what="the records after a shut-down and a start")

    # Shelved: the host gets the vCPUs and memory back, the disks stay; unshelved: the records are there.
    host = Host.objects.get(name="local")
    run(lambda: shelving.stack_shelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    assert shop.shelved_with_memory
    host.refresh_from_db()
    assert (host.allocated_vcpus, host.allocated_memory_mib) == (0, 0)
    with open_driver(SYSTEM_URI) as driver:
        volumes = {v.name for v in driver.list_volumes(pool=pool)}
        assert {i.volume_name for i in shop.instances.all()} <= volumes
    run(lambda: shelving.stack_unshelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING, shop.status_reason
    page_with(shop, "first record", what="the records after unshelving")

    # The run lease ends: the stack is shelved (the project's policy); the storage lease ends: deleted.
    Stack.objects.filter(pk=shop.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    run(lambda: lifecycle.leases_expire())
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    Stack.objects.filter(pk=shop.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    run(lambda: lifecycle.leases_expire())
    shop.refresh_from_db()
    assert shop.status == Status.DELETED, shop.status_reason
    with open_driver(SYSTEM_URI) as driver:
        assert not {i.domain_name for i in shop.instances.all()} & {d.name for d in driver.list_domains()}
        assert not {i.volume_name for i in shop.instances.all()} & {v.name for v in driver.list_volumes(pool=pool)}

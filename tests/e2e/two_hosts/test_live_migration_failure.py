"""A live migration whose target's libvirtd stops mid-way: the stack keeps running on its source and
answers there, the operation failed with a reason, and the target keeps no claim."""

from __future__ import annotations

import threading
import time

import pytest

from catalog import services as catalog_services
from catalog.models import Feed
from provisioning.drivers import DriverError
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.models import Host, Operation, Status
from provisioning.services import lifecycle, migration
from tests.e2e.conftest import SYSTEM_URI
from tests.e2e.records import launch_classic, page_with, post_record, web_url
from tests.e2e.two_hosts.test_live_migration import RECORD, _no_capture
from tests.polling import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOCAL_ADDRESS = "127.0.0.4"
OWN_ADDRESS = "127.0.0.5"


def _incoming_domains(uri: str) -> list[str]:
    try:
        with LibvirtDriver(uri) as driver:
            return [d.name for d in driver.list_domains()]
    except DriverError:
        return []


def test_a_migration_whose_target_stops_leaves_the_stack_running_on_its_source(
    operator, member, project, demo_feed, register_host, private_libvirtd, settings
):
    # Slow enough that the target can be stopped while the guests' memory is on its way.
    settings.MIGRATION_MAX_MIB_SEC = 2
    local = register_host(name="local", uri=SYSTEM_URI, public_address=LOCAL_ADDRESS)
    feed = catalog_services.feed_subscribe_and_import(user=operator, url=demo_feed, project=project)
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    shop = launch_classic(operator=operator, member=member, project=project, capture=_no_capture)
    assert post_record(web_url(shop), RECORD)[0] == 201
    page_with(shop, RECORD, what="the record on the page before the move")
    url_before = web_url(shop)
    own = register_host(name="own", uri=private_libvirtd.uri, public_address=OWN_ADDRESS)

    operation = migration.begin_stack_migration(user=operator, stack=shop, target=own, queue=False)
    assert Host.objects.get(pk=own.pk).allocated_instances == 3  # claimed while it moves

    stopped = threading.Event()

    def stop_target_mid_way() -> None:
        wait_for(lambda: _incoming_domains(private_libvirtd.uri) or None, timeout=120, interval=0.2, what="incoming")
        time.sleep(1.5)
        private_libvirtd.stop_libvirtd()
        stopped.set()

    stopper = threading.Thread(target=stop_target_mid_way, daemon=True)
    stopper.start()
    moved = migration.run_stack_migration(stack_id=shop.pk, operation_id=operation.pk)
    stopper.join(timeout=130)
    assert stopped.is_set(), "the target's libvirtd was not stopped during the migration"

    operation.refresh_from_db()
    shop.refresh_from_db()
    print(f"failed migration: {operation.detail}")
    assert not moved
    assert operation.status == Operation.State.FAILED
    assert operation.detail.startswith("could not move to own: ")
    assert shop.status == Status.RUNNING, shop.status_reason
    assert shop.moving_from is None
    assert {i.host_id for i in shop.instances.all()} == {local.pk}
    assert shop.network.host_id == local.pk
    assert web_url(shop) == url_before
    page_with(shop, RECORD, what="the record on the page, still served from the source", timeout=60)
    # Nothing left claimed on the target; the source holds the stack as before.
    target = Host.objects.get(pk=own.pk)
    assert (target.allocated_vcpus, target.allocated_memory_mib, target.allocated_instances) == (0, 0, 0)
    assert Host.objects.get(pk=local.pk).allocated_instances == 3
    assert shop.events.filter(is_error=True, message__startswith="could not move to own").exists()

    # The target comes back (its leftovers are removed by the fixture); the stack is deleted where it runs.
    private_libvirtd.start()
    lifecycle.stack_destroy(user=member, stack=shop)
    shop.refresh_from_db()
    assert shop.status == Status.DELETED, shop.status_reason

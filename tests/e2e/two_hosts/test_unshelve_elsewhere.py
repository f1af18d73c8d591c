"""A shelved three-tier stack whose own host has no room is unshelved on another real host: its disks
go through libvirt's storage API, its records come along, and nothing of it stays on the first host."""

from __future__ import annotations

import pytest

from catalog import services as catalog_services
from catalog.models import Feed
from provisioning.models import Host, Status
from provisioning.services import lifecycle, shelving
from tests.e2e.conftest import SYSTEM_URI
from tests.e2e.hosts import HOST2_ADDRESS, leftovers
from tests.e2e.records import launch_classic, page_with, post_record, web_url

pytestmark = pytest.mark.e2e

LOCAL_ADDRESS = "127.0.0.4"


def test_a_shelved_stack_moves_to_another_host_with_its_records(
    operator, member, project, demo_feed, register_host, host2_uri, django_capture_on_commit_callbacks
):
    def run(work):
        with django_capture_on_commit_callbacks(execute=True):
            return work()

    local = register_host(name="local", uri=SYSTEM_URI, public_address=LOCAL_ADDRESS)
    feed = catalog_services.feed_subscribe_and_import(user=operator, url=demo_feed, project=project)
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    shop = launch_classic(operator=operator, member=member, project=project, capture=django_capture_on_commit_callbacks)
    db_name = shop.instances.get(role="db").name
    page_with(shop, db_name, what="the web page showing the chain on the first host")
    assert post_record(web_url(shop), "kept across hosts")[0] == 201

    run(lambda: shelving.stack_shelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason

    # Another host joins, and the first one has no vCPUs left for the stack.
    second = register_host(name="host2", uri=host2_uri, public_address=HOST2_ADDRESS)
    Host.objects.filter(pk=local.pk).update(cpus=0)
    run(lambda: shelving.stack_unshelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING, shop.status_reason
    assert {i.host_id for i in shop.instances.all()} == {second.pk}
    assert web_url(shop).startswith(f"http://{HOST2_ADDRESS}:")
    page_with(shop, "kept across hosts", db_name, what="the record on the page, served from the second host")
    assert leftovers(local.uri, pool=local.storage_pool) == {}

    run(lambda: lifecycle.stack_destroy(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.DELETED, shop.status_reason
    assert leftovers(second.uri, pool=second.storage_pool) == {}

"""A running three-tier stack moves live to another real host while a client reads its web page in a
loop: the reads that failed and the longest outage are printed and recorded on the operation's test
report; records written before the move are served after it, and the first host keeps nothing."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from catalog import services as catalog_services
from catalog.models import Feed
from provisioning.models import Host, Operation, Status
from provisioning.services import lifecycle, migration
from tests.e2e.conftest import SYSTEM_URI
from tests.e2e.hosts import HOST2_ADDRESS, leftovers
from tests.e2e.records import launch_classic, page_with, post_record, web_url
from tests.polling import page_text

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOCAL_ADDRESS = "127.0.0.4"
RECORD = "written before the move"


class PageReader(threading.Thread):
    """Reads the stack's page in a loop; after a failed read it asks the API where the page is now."""

    def __init__(self, *, user, stack_id: int, url: str, marker: str) -> None:
        super().__init__(daemon=True)
        self.user, self.stack_id, self.url, self.marker = user, stack_id, url, marker
        self.reads = self.failed = 0
        self.longest_outage = 0.0
        self.urls = [url]
        self._down_since: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        client = APIClient()
        client.force_authenticate(self.user)
        try:
            while not self._halt.is_set():
                self._read_once(client)
                self._halt.wait(0.1)
        finally:
            connection.close()  # this thread's own database connection

    def _read_once(self, client: APIClient) -> None:
        started = time.monotonic()
        text = page_text(self.url)
        self.reads += 1
        if text is not None and self.marker in text:
            if self._down_since is not None:
                self.longest_outage = max(self.longest_outage, started - self._down_since)
                self._down_since = None
            return
        self.failed += 1
        self._down_since = self._down_since or started
        body = client.get(f"/api/v1/stacks/{self.stack_id}/").json()
        urls = [endpoint["url"] for endpoint in body.get("endpoints", [])]
        if urls and urls[0] != self.url:
            self.url = urls[0]
            self.urls.append(self.url)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)
        if self._down_since is not None:  # still down when stopped
            self.longest_outage = max(self.longest_outage, time.monotonic() - self._down_since)


def test_a_running_stack_moves_live_to_another_host_while_its_page_is_read(
    operator, member, project, demo_feed, register_host, host2_uri, record_property
):
    local = register_host(name="local", uri=SYSTEM_URI, public_address=LOCAL_ADDRESS)
    feed = catalog_services.feed_subscribe_and_import(user=operator, url=demo_feed, project=project)
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    shop = launch_classic(operator=operator, member=member, project=project, capture=_no_capture)
    db_name = shop.instances.get(role="db").name
    page_with(shop, db_name, what="the web page showing the chain on the first host")
    assert post_record(web_url(shop), RECORD)[0] == 201
    page_with(shop, RECORD, what="the record on the page before the move")
    second = register_host(name="host2", uri=host2_uri, public_address=HOST2_ADDRESS)

    reader = PageReader(user=member, stack_id=shop.pk, url=web_url(shop), marker=RECORD)
    reader.start()
    try:  # the reader uses the database: it must end with the test, whatever happens
        time.sleep(1)
        started = time.monotonic()
        operation = migration.begin_stack_migration(user=operator, stack=shop, queue=False)
        assert operation.target_host_id == second.pk  # placement's choice: the only other host
        moved = migration.run_stack_migration(stack_id=shop.pk, operation_id=operation.pk)
        took = time.monotonic() - started
        page_with(shop, RECORD, db_name, what="the record on the page, served from the second host")
        time.sleep(2)
    finally:
        reader.stop()

    operation.refresh_from_db()
    shop.refresh_from_db()
    report = (
        f"live migration of 3 tiers: {took:.1f} s; {reader.failed} of {reader.reads} reads failed, "
        f"longest outage {reader.longest_outage:.1f} s; endpoints {' -> '.join(reader.urls)}"
    )
    print(report)
    record_property("live_migration", report)
    assert moved, operation.detail
    assert operation.status == Operation.State.SUCCEEDED, operation.detail
    assert shop.status == Status.RUNNING, shop.status_reason
    assert shop.moving_from is None
    assert {i.host_id for i in shop.instances.all()} == {second.pk}
    assert shop.network.host_id == second.pk
    assert web_url(shop).startswith(f"http://{HOST2_ADDRESS}:")
    assert operation.result["endpoints"] == [web_url(shop)]
    assert sorted(operation.result["moved"]) == sorted(i.name for i in shop.instances.all())
    assert reader.urls[-1] == web_url(shop)  # the client found the new endpoint through the API
    assert leftovers(local.uri, pool=local.storage_pool) == {}
    # The first host's claim ended with the move; the second holds the stack.
    assert Host.objects.get(pk=local.pk).allocated_instances == 0
    assert Host.objects.get(pk=second.pk).allocated_instances == 3

    lifecycle.stack_destroy(user=member, stack=shop)
    shop.refresh_from_db()
    assert shop.status == Status.DELETED, shop.status_reason
    assert leftovers(second.uri, pool=second.storage_pool) == {}


class _NoCapture:
    """In a transactional test each commit runs its callbacks at once: nothing to capture."""

    def __call__(self, **_kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return False


_no_capture = _NoCapture()

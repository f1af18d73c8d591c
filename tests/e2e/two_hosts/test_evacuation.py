"""A draining real host with a running three-tier stack is evacuated: the stack moves live to the other
real host and answers there on its new endpoint with the records it had; then the emptied host
enters maintenance, and undraining brings it back."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from catalog import services as catalog_services
from catalog.models import Feed
from provisioning.models import Host, Operation, Status
from provisioning.services import hosts, lifecycle, maintenance
from tests.e2e.conftest import SYSTEM_URI
from tests.e2e.hosts import HOST2_ADDRESS, leftovers
from tests.e2e.records import launch_classic, page_with, post_record, web_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOCAL_ADDRESS = "127.0.0.4"
RECORD = "written before the evacuation"


class _NoCapture:
    """In a transactional test each commit runs its callbacks at once: nothing to capture."""

    def __call__(self, **_kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return False


def test_a_draining_host_is_evacuated_to_the_other_host(
    operator, member, project, demo_feed, register_host, host2_uri, record_property
):
    local = register_host(name="local", uri=SYSTEM_URI, public_address=LOCAL_ADDRESS)
    feed = catalog_services.feed_subscribe_and_import(user=operator, url=demo_feed, project=project)
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    shop = launch_classic(operator=operator, member=member, project=project, capture=_NoCapture())
    db_name = shop.instances.get(role="db").name
    page_with(shop, db_name, what="the web page showing the chain on the first host")
    assert post_record(web_url(shop), RECORD)[0] == 201
    old_url = web_url(shop)
    second = register_host(name="host2", uri=host2_uri, public_address=HOST2_ADDRESS)

    api = APIClient()
    api.force_authenticate(operator)
    refused = api.post(f"/api/v1/hosts/{local.pk}/evacuate/")
    assert refused.status_code == 409, refused.content  # not draining yet
    assert api.post(f"/api/v1/hosts/{local.pk}/drain/").status_code == 200
    # The job runs inline here (the tests' task queue is synchronous): the answer comes once it ended.
    answer = api.post(f"/api/v1/hosts/{local.pk}/evacuate/")
    assert answer.status_code == 202, answer.content
    operation = Operation.objects.get(pk=answer.json()["id"])
    record_property(
        "evacuation", f"{operation.status}: {operation.detail} in {operation.finished_at - operation.started_at}"
    )

    assert operation.status == Operation.State.SUCCEEDED, operation.detail
    assert operation.result["left"] == []
    (moved,) = operation.result["moved"]
    assert (moved["stack"], moved["to"]) == (shop.pk, "host2")
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING, shop.status_reason
    assert {i.host_id for i in shop.instances.all()} == {second.pk}
    new_url = web_url(shop)
    assert new_url != old_url
    assert new_url.startswith(f"http://{HOST2_ADDRESS}:")
    page_with(shop, RECORD, db_name, what="the record on the page, served from the second host")
    shown = api.get(f"/api/v1/stacks/{shop.pk}/").json()
    assert new_url in [endpoint["url"] for endpoint in shown["endpoints"]]
    assert leftovers(local.uri, pool=local.storage_pool) == {}

    # Emptied, the host enters maintenance at once; undraining ends it and reads it again.
    entered = maintenance.begin_maintenance(user=operator, host=local)
    entered.refresh_from_db()
    local.refresh_from_db()
    assert entered.status == Operation.State.SUCCEEDED, entered.detail
    assert local.maintenance
    assert local.maintenance_since is not None
    hosts.host_undrain(user=operator, host=local)
    local = Host.objects.get(pk=local.pk)
    assert (local.draining, local.maintenance, local.healthy) == (False, False, True)

    lifecycle.stack_destroy(user=member, stack=shop)
    shop.refresh_from_db()
    assert shop.status == Status.DELETED, shop.status_reason
    assert leftovers(second.uri, pool=second.storage_pool) == {}

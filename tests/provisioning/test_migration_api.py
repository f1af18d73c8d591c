"""POST /api/v1/stacks/{id}/migrate/ and /instances/{id}/migrate/: operators only, 202 with the operation,
strict bodies, and the service's refusals as the API's errors."""

from __future__ import annotations

import pytest

from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.models import Host, Operation, Stack, Status
from tests.factories import HostFactory
from tests.provisioning.libvirt_doubles import NODE_POOL, NODE_POOL_PATH

pytestmark = pytest.mark.django_db


@pytest.fixture
def can_migrate(monkeypatch):
    """The test driver's hosts cannot migrate: its driver stands in for one that can where a test needs it."""
    monkeypatch.setattr(LibvirtDriver, "supports_live_migration", lambda self: True)


@pytest.fixture
def second(db, node_uri):
    return HostFactory(name="second", uri=node_uri, storage_pool=NODE_POOL, storage_pool_path=NODE_POOL_PATH)


def test_an_operator_moves_a_stack_and_gets_its_operation(api, operator, shop, second, can_migrate):
    response = api(operator).post(f"/api/v1/stacks/{shop.pk}/migrate/", {"host": "second"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["kind"], body["status"], body["target_host"], body["stack"]) == (
        "migrate_stack",
        "pending",
        "second",
        shop.pk,
    )
    assert body["url"].endswith(f"/api/v1/operations/{body['id']}/")
    assert Stack.objects.get(pk=shop.pk).status == Status.MIGRATING


def test_an_instance_is_moved_with_its_stack_and_a_host_may_be_named_by_id(api, operator, shop, second, can_migrate):
    web = shop.instances.get(role="web")
    response = api(operator).post(f"/api/v1/instances/{web.pk}/migrate/", {"host": second.pk}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["kind"], body["instance"], body["target_host"]) == ("migrate_instance", web.pk, "second")
    assert "share one private network" in body["detail"]


def test_placement_chooses_when_no_host_is_named(api, operator, shop, second, can_migrate):
    response = api(operator).post(f"/api/v1/stacks/{shop.pk}/migrate/", {}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["target_host"] == "second"


def test_members_are_refused_and_outsiders_see_nothing(api, owner, member, outsider, shop, second, can_migrate):
    web = shop.instances.get(role="web")
    for user in (owner, member):
        assert api(user).post(f"/api/v1/stacks/{shop.pk}/migrate/", {}, format="json").status_code == 403
        assert api(user).post(f"/api/v1/instances/{web.pk}/migrate/", {}, format="json").status_code == 403
    assert api(outsider).post(f"/api/v1/stacks/{shop.pk}/migrate/", {}, format="json").status_code == 404
    assert api(outsider).post(f"/api/v1/instances/{web.pk}/migrate/", {}, format="json").status_code == 404
    assert api().post(f"/api/v1/stacks/{shop.pk}/migrate/", {}, format="json").status_code in (401, 403)
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"host": "nowhere"}, "host"),
        ({"host": 999999}, "host"),
        ({"host": ["second"]}, "host"),
        ({"host": True}, "host"),
        ({"hots": "second"}, "hots"),
    ],
)
def test_bad_bodies_are_refused(api, operator, shop, second, can_migrate, body, field):
    response = api(operator).post(f"/api/v1/stacks/{shop.pk}/migrate/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not Operation.objects.exists()


def test_refusals_answer_as_the_api_does(api, operator, shop, second, can_migrate):
    url = f"/api/v1/stacks/{shop.pk}/migrate/"
    source = shop.instances.first().host
    same = api(operator).post(url, {"host": source.name}, format="json")
    assert (same.status_code, same.json()["code"]) == (400, "invalid")
    Host.objects.filter(pk=second.pk).update(draining=True)
    assert api(operator).post(url, {"host": "second"}, format="json").json()["code"] == "invalid_state"
    Host.objects.filter(pk=second.pk).update(draining=False, cpus=0)
    full = api(operator).post(url, {"host": "second"}, format="json")
    assert (full.status_code, full.json()["code"]) == (409, "no_capacity")
    Host.objects.filter(pk=second.pk).update(cpus=16)
    assert api(operator).post(url, {}, format="json").status_code == 202
    busy = api(operator).post(url, {}, format="json")
    assert (busy.status_code, busy.json()["code"]) == (409, "invalid_state")


def test_a_hypervisor_that_cannot_migrate_is_refused(api, operator, shop, second):
    response = api(operator).post(f"/api/v1/stacks/{shop.pk}/migrate/", {"host": "second"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "invalid_state")
    assert "cannot move running guests" in response.json()["detail"]

"""Registering, changing, refreshing and draining hosts: through the driver, never losing an operator's edit."""

from __future__ import annotations

import re

import libvirt
import pytest
from django.contrib.messages import get_messages

from portal import errors
from portal.models import AuditEvent
from provisioning.drivers import NotFound
from provisioning.models import Host
from provisioning.services import hosts
from tests.factories import HostFactory


def test_only_operators_register_hosts(member):
    with pytest.raises(errors.PermissionDenied, match="only operators"):
        hosts.host_register(user=member, name="t1", uri="test:///default")
    assert not Host.objects.exists()


def test_a_field_hosts_do_not_have_is_refused(operator):
    with pytest.raises(errors.Invalid, match="no settable field healthy"):
        hosts.host_register(user=operator, name="t1", uri="test:///default", healthy=True)


def test_an_invalid_row_is_refused_before_connecting(operator):
    with pytest.raises(errors.Invalid, match="public_address") as refused:
        hosts.host_register(user=operator, name="t1", uri="test:///default", public_address="not an address")
    assert list(refused.value.fields) == ["public_address"]
    assert not Host.objects.exists()


def test_refresh_keeps_an_operators_edit_made_during_the_read(operator):
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="default-pool", storage_pool_path="/default-pool"
    )
    stale = Host.objects.get(pk=host.pk)  # what the refresh task loaded before the slow read
    Host.objects.filter(pk=host.pk).update(enabled=False, memory_reserved_mib=2048, healthy=False)
    hosts.host_refresh(host=stale)
    saved = Host.objects.get(pk=host.pk)
    assert (saved.enabled, saved.memory_reserved_mib) == (False, 2048)  # the operator's edit
    assert saved.healthy is True  # what the refresh observed


def test_refresh_of_an_unreachable_host_marks_it_unhealthy_and_keeps_it(db, caplog):
    host = HostFactory(name="far", uri="qemu+tcp://127.0.0.1:1/system", healthy=True, cpus=8)
    hosts.host_refresh(host=host)
    saved = Host.objects.get(pk=host.pk)
    assert saved.healthy is False
    assert saved.health_error == "cannot connect to the host: it did not answer"
    assert "host qemu+tcp://127.0.0.1:1/system: cannot connect: unable to connect to server" in caplog.text
    assert saved.cpus == 8  # the last known capacity stays


def test_update_reconnects_when_the_uri_changes_and_refuses_a_bad_one(operator):
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="default-pool", storage_pool_path="/default-pool"
    )
    with pytest.raises(
        errors.Invalid,
        match=re.escape("cannot use host qemu+unix:///system?socket=/run/portal-no-such-host/libvirt-sock"),
    ) as refused:
        hosts.host_update(
            user=operator, host=host, uri="qemu+unix:///system?socket=/run/portal-no-such-host/libvirt-sock"
        )
    assert list(refused.value.fields) == ["uri"]
    assert Host.objects.get(pk=host.pk).uri == "test:///default"

    hosts.host_update(user=operator, host=Host.objects.get(pk=host.pk), enabled=False, memory_reserved_mib=1024)
    saved = Host.objects.get(pk=host.pk)
    assert (saved.enabled, saved.memory_reserved_mib) == (False, 1024)
    assert AuditEvent.objects.get(action="host.update").detail == {"fields": ["enabled", "memory_reserved_mib"]}


# Draining: a drained host keeps its stacks but gets no new one, until it is undrained.


def test_only_operators_drain_hosts(member):
    host = HostFactory()
    for change in (hosts.host_drain, hosts.host_undrain):
        with pytest.raises(errors.PermissionDenied, match="only operators"):
            change(user=member, host=host)
    assert Host.objects.get(pk=host.pk).draining is False
    assert not AuditEvent.objects.exists()


def test_drain_writes_only_draining_and_is_audited_once(operator):
    host = HostFactory(name="h1", memory_reserved_mib=512)
    Host.objects.filter(pk=host.pk).update(memory_reserved_mib=2048, enabled=False)  # an edit `host` has not seen
    assert hosts.host_drain(user=operator, host=host).draining is True
    hosts.host_drain(user=operator, host=host)  # already draining: nothing to do, nothing to audit
    saved = Host.objects.get(pk=host.pk)
    assert (saved.draining, saved.memory_reserved_mib, saved.enabled) == (True, 2048, False)
    assert list(AuditEvent.objects.values_list("action", "actor")) == [("host.drain", operator.pk)]
    hosts.host_undrain(user=operator, host=host)
    assert Host.objects.get(pk=host.pk).draining is False
    assert AuditEvent.objects.filter(action="host.undrain", target__contains="h1").count() == 1


def test_a_drained_host_gets_no_new_stack_and_undrain_brings_it_back(operator, member, project, ready_version):
    from provisioning.services.launch import stack_launch

    def launch(name: str) -> str:
        stack = stack_launch(user=member, project=project, name=name, appliance_version=ready_version)
        return stack.instances.get().host.name

    project.max_instances = 10
    project.save()
    first = HostFactory(name="first", uri="test:///first")
    HostFactory(name="second", uri="test:///second", memory_mib=1024)
    assert launch("a") == "first"  # both all free: the older host
    hosts.host_drain(user=operator, host=first)
    assert [launch("b"), launch("c")] == ["second", "second"]
    assert first.instances.count() == 1  # its stack stays
    hosts.host_undrain(user=operator, host=first)
    assert launch("d") == "first"


@pytest.mark.parametrize("action", ["drain", "undrain"])
def test_drain_in_the_api(api, operator, member, action):
    host = HostFactory(draining=action == "undrain")
    response = api(operator).post(f"/api/v1/hosts/{host.pk}/{action}/")
    assert response.status_code == 200, response.content
    assert response.json()["draining"] is (action == "drain")
    assert Host.objects.get(pk=host.pk).draining is (action == "drain")
    assert AuditEvent.objects.filter(action=f"host.{action}", actor=operator).count() == 1


def test_only_operators_drain_in_the_api(api, member, db):
    host = HostFactory()
    assert api().post(f"/api/v1/hosts/{host.pk}/drain/").status_code == 401
    refused = api(member).post(f"/api/v1/hosts/{host.pk}/drain/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert api(member).get("/api/v1/hosts/").status_code == 403
    missing = api(member).post("/api/v1/hosts/999999/drain/")
    assert missing.status_code == 403  # hosts are operators' business: not even whether one exists
    assert Host.objects.get(pk=host.pk).draining is False


def test_draining_is_shown_and_cannot_be_set_through_the_host_fields(api, operator):
    host = HostFactory()
    listed = api(operator).get("/api/v1/hosts/").json()["results"]
    assert [row["draining"] for row in listed] == [False]
    assert api(operator).post("/api/v1/hosts/999999/drain/").status_code == 404
    with pytest.raises(errors.Invalid, match="no settable field draining"):
        hosts.host_update(user=operator, host=host, draining=True)


@pytest.mark.parametrize("action", ["drain", "undrain"])
def test_drain_in_the_admin(client, operator, action):
    client.force_login(operator)
    host = HostFactory(draining=action == "undrain")
    response = client.post("/admin/provisioning/host/", {"action": action, "_selected_action": [host.pk]}, follow=True)
    assert response.status_code == 200
    assert Host.objects.get(pk=host.pk).draining is (action == "drain")
    assert AuditEvent.objects.filter(action=f"host.{action}", actor=operator).count() == 1
    page = client.get(f"/admin/provisioning/host/{host.pk}/change/").content.decode()
    assert 'name="draining"' not in page  # shown, not a form field: the actions change it


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("qemu+ext:///system?command=/bin/touch%20{marker}", "the ext transport runs a program"),
        ("qemu+ssh://root@127.0.0.1/system?command=/bin/touch%20{marker}", "may not name a command"),
        ("qemu+libssh2://root@127.0.0.1/system?COMMAND=/bin/touch%20{marker}", "may not name a command"),
        ("qemu:///session", "not allowed"),
        ("xen:///system", "transport 'xen' is not allowed"),
        ("nonsense:///x", "transport 'nonsense' is not allowed"),
        ("not a uri", "printable ASCII characters, with no space"),
        ("test:default", "not a libvirt URI"),
    ],
)
def test_host_uris_that_could_run_commands_or_are_not_allowed_are_refused(operator, tmp_path, uri, message):
    marker = tmp_path / "ran"
    with pytest.raises(errors.Invalid, match=message) as refused:
        hosts.host_register(user=operator, name="evil", uri=uri.format(marker=marker))
    assert list(refused.value.fields) == ["uri"]
    assert not marker.exists()  # nothing was run on the portal server
    assert not Host.objects.exists()


def test_the_allowed_transports_are_a_setting(operator, settings):
    settings.HOST_TRANSPORTS = ["qemu+tls"]
    with pytest.raises(errors.Invalid, match="transport 'test' is not allowed"):
        hosts.host_register(user=operator, name="t1", uri="test:///default")
    settings.HOST_TRANSPORTS = ["test"]
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="default-pool", storage_pool_path="/default-pool"
    )
    assert host.healthy
    with pytest.raises(errors.Invalid, match="may not name a command"):
        hosts.host_update(user=operator, host=host, uri="test:///default?command=/bin/true")


# Observing and repairing: the periodic refresh only reads; setting the pool up is an operator's act.


def stop_pool(name: str) -> None:
    conn = libvirt.open("test:///default")
    try:
        conn.storagePoolLookupByName(name).destroy()
    finally:
        conn.close()


@pytest.fixture
def keeper():
    """An open test:///default connection, so the test driver keeps its state between calls."""
    from provisioning.drivers import open_driver

    with open_driver("test:///default") as driver:
        driver.host_info()
        yield driver


def test_refresh_does_not_set_a_missing_pool_up_and_repair_does(operator, keeper):
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="portal-x", storage_pool_path="/portal-x"
    )
    keeper.delete_pool(name="portal-x")  # someone removed it behind the portal's back

    hosts.host_refresh(host=host)
    saved = Host.objects.get(pk=host.pk)
    assert (saved.healthy, saved.health_error) == (
        False,
        "storage pool 'portal-x' is missing; repair the host to set it up again",
    )
    assert saved.cpus == 16  # the rest is still read
    with pytest.raises(NotFound):
        keeper.pool_info(name="portal-x")  # not set up again behind the operator's back

    hosts.host_repair(user=operator, host=saved)
    repaired = Host.objects.get(pk=host.pk)
    assert (repaired.healthy, repaired.health_error) == (True, "")
    assert keeper.pool_info(name="portal-x").active
    assert AuditEvent.objects.get(action="host.repair").detail == {"healthy": True}


def test_refresh_does_not_start_a_stopped_pool(operator, keeper):
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="default-pool", storage_pool_path="/default-pool"
    )
    stop_pool("default-pool")

    hosts.host_refresh(host=host)
    stopped = "storage pool 'default-pool' is stopped; repair the host to start it"
    assert Host.objects.get(pk=host.pk).health_error == stopped
    assert keeper.pool_info(name="default-pool").active is False

    hosts.host_repair(user=operator, host=host)
    assert Host.objects.get(pk=host.pk).healthy
    assert keeper.pool_info(name="default-pool").active is True


def test_only_operators_repair_hosts(member, operator, api, keeper):
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="default-pool", storage_pool_path="/default-pool"
    )
    with pytest.raises(errors.PermissionDenied):
        hosts.host_repair(user=member, host=host)
    assert api(member).post(f"/api/v1/hosts/{host.pk}/repair/").status_code == 403
    response = api(operator).post(f"/api/v1/hosts/{host.pk}/repair/")
    assert response.status_code == 200, response.content
    assert response.json()["healthy"] is True
    assert list(AuditEvent.objects.filter(action="host.repair").values_list("actor", flat=True)) == [operator.pk]


def test_repair_in_the_admin(client, operator, keeper):
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="portal-x", storage_pool_path="/portal-x"
    )
    keeper.delete_pool(name="portal-x")
    client.force_login(operator)
    response = client.post("/admin/provisioning/host/", {"action": "repair", "_selected_action": [host.pk]})
    assert response.status_code == 302
    assert [str(message) for message in get_messages(response.wsgi_request)] == ["t1: healthy"]
    assert keeper.pool_info(name="portal-x").active

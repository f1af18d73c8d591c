"""Maintenance: drained, evacuated, then marked; a host in maintenance whose libvirtd is stopped is no
failure (no health problem, no reconciler failure, no error event), and undraining brings it back."""

from __future__ import annotations

import logging

import pytest

from portal import errors
from portal.models import AuditEvent
from provisioning.models import Host, Operation, StackEvent, Status
from provisioning.services import hosts, maintenance
from provisioning.services.reconcile import reconcile_host
from provisioning.services.watchdog import stacks_watchdog
from tests.factories import HostFactory
from tests.provisioning.test_evacuation import stack_on

# A port nothing listens on: libvirt's remote driver gets "connection refused" at once, as from a
# host whose libvirtd was stopped (tests/provisioning/test_host_services.py does the same).
STOPPED_URI = "qemu+tcp://127.0.0.1:1/system"


@pytest.fixture
def hv(db) -> Host:
    return HostFactory(name="hv-1", uri="test:///maintained")


def enter(step, user, host: Host) -> Operation:
    operation = step(lambda: maintenance.begin_maintenance(user=user, host=host))
    operation.refresh_from_db()
    host.refresh_from_db()
    return operation


@pytest.mark.parametrize("who", ["owner", "member", "outsider"])
def test_only_operators_may_put_a_host_in_maintenance(api, hv, request, who):
    answer = api(request.getfixturevalue(who)).post(f"/api/v1/hosts/{hv.pk}/maintenance/")
    assert answer.status_code == 403
    hv.refresh_from_db()
    assert (hv.draining, hv.maintenance) == (False, False)
    with pytest.raises(errors.PermissionDenied):
        maintenance.begin_maintenance(user=request.getfixturevalue(who), host=hv)


def test_maintenance_drains_evacuates_and_marks_the_host(api, operator, hv, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(operator).post(f"/api/v1/hosts/{hv.pk}/maintenance/")
    assert answer.status_code == 202, answer.content
    operation = Operation.objects.get(pk=answer.json()["id"])
    assert (operation.kind, operation.request) == (Operation.Kind.EVACUATE_HOST, {"maintenance": True})
    assert operation.status == Operation.State.SUCCEEDED
    assert operation.detail == "hv-1 ran no stack: nothing to move; hv-1 is in maintenance: its libvirtd may be stopped"
    shown = api(operator).get(f"/api/v1/hosts/{hv.pk}/").json()
    assert (shown["draining"], shown["maintenance"]) == (True, True)
    assert shown["maintenance_since"] is not None
    assert [e.action for e in AuditEvent.objects.order_by("pk")] == ["host.drain", "host.evacuate", "host.maintenance"]
    # Asked again, it is refused: the host is in maintenance already.
    assert api(operator).post(f"/api/v1/hosts/{hv.pk}/maintenance/").status_code == 409
    assert api(operator).post(f"/api/v1/hosts/{hv.pk}/evacuate/").status_code == 409


def test_stopped_stacks_stay_and_do_not_keep_the_host_from_maintenance(step, operator, project, hv):
    stack_on(hv, project, "parked", Status.STOPPED)
    operation = enter(step, operator, hv)
    assert hv.maintenance is True
    assert operation.status == Operation.State.PARTIAL
    assert [item["name"] for item in operation.result["left"]] == ["parked"]


def test_a_running_stack_that_cannot_move_keeps_the_host_out_of_maintenance(step, operator, shop, test_host):
    """libvirt's test driver moves no running guest: the stack is listed with why and keeps running."""
    operation = enter(step, operator, test_host)
    (left,) = operation.result["left"]
    assert left["stack"] == shop.pk
    assert "cannot move running guests" in left["reason"]
    assert operation.status == Operation.State.FAILED
    assert operation.detail.endswith("test-host is not in maintenance: 1 running stack left")
    test_host.refresh_from_db()
    assert (test_host.draining, test_host.maintenance) == (True, False)
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING


def test_a_stopped_libvirtd_in_maintenance_is_not_a_failure(step, operator, project, hv, caplog):
    stack_on(hv, project, "parked", Status.STOPPED)
    enter(step, operator, hv)
    Host.objects.filter(pk=hv.pk).update(uri=STOPPED_URI)  # its libvirtd is stopped
    hv.refresh_from_db()

    with caplog.at_level(logging.INFO):
        hosts.host_refresh(host=hv)
        reconciled = reconcile_host(host=hv)
        stacks_watchdog()
    saved = Host.objects.get(pk=hv.pk)
    assert saved.healthy is False  # placement could not use it (it is draining anyway)
    assert saved.health_error == ""  # but nothing is wrong with it
    assert reconciled.failed == []
    # The driver logs what libvirt said (for operators); the services raise no alarm of their own.
    services = [r for r in caplog.records if r.name.startswith("provisioning.services")]
    assert services
    assert not [r for r in services if r.levelno >= logging.WARNING]
    assert not StackEvent.objects.filter(is_error=True).exists()
    assert set(Host.objects.get(pk=hv.pk).instances.values_list("status", flat=True)) == {Status.STOPPED}


def test_an_unreachable_host_out_of_maintenance_is_still_a_failure(db):
    host = HostFactory(name="gone", uri=STOPPED_URI, draining=True)
    hosts.host_refresh(host=host)
    assert Host.objects.get(pk=host.pk).health_error == "cannot connect to the host: it did not answer"
    assert reconcile_host(host=host).failed == ["cannot connect to the host: it did not answer"]


def test_undrain_ends_maintenance_and_reads_the_host_again(step, operator, api, test_host):
    enter(step, operator, test_host)
    Host.objects.filter(pk=test_host.pk).update(uri=STOPPED_URI)
    test_host.refresh_from_db()
    hosts.host_refresh(host=test_host)
    assert Host.objects.get(pk=test_host.pk).healthy is False
    # libvirtd is back: the host's own URI answers again.
    Host.objects.filter(pk=test_host.pk).update(uri="test:///default")

    shown = api(operator).post(f"/api/v1/hosts/{test_host.pk}/undrain/").json()

    assert (shown["draining"], shown["maintenance"], shown["maintenance_since"]) == (False, False, None)
    assert (shown["healthy"], shown["health_error"]) == (True, "")  # read again at once
    assert AuditEvent.objects.filter(action="host.maintenance_end").count() == 1


def test_undrain_of_a_host_still_stopped_says_it_is_unhealthy(step, operator, hv):
    enter(step, operator, hv)
    Host.objects.filter(pk=hv.pk).update(uri=STOPPED_URI)
    hv.refresh_from_db()
    hosts.host_undrain(user=operator, host=hv)
    saved = Host.objects.get(pk=hv.pk)
    assert (saved.maintenance, saved.healthy) == (False, False)
    assert saved.health_error == "cannot connect to the host: it did not answer"


def test_placement_never_chooses_a_host_in_maintenance(step, operator, hv, roomy_project, version):
    from tests.provisioning.placement_support import THREE_TIER, launch_stack

    enter(step, operator, hv)
    with pytest.raises(errors.NoCapacity):
        launch_stack(roomy_project, THREE_TIER, version=version, name="newcomer")


def test_a_person_cannot_act_on_a_stack_whose_host_is_in_maintenance(member, project):
    """Its libvirtd may be stopped: the refusal says why and what can be done, instead of failing later."""
    from provisioning.services.power import stack_power

    host = HostFactory(name="patching", maintenance=True, draining=True)
    stack = stack_on(host, project, "parked", Status.STOPPED)
    with pytest.raises(errors.WrongState, match="host patching is in maintenance"):
        stack_power(user=member, stack=stack, action="start")
    stack.refresh_from_db()
    assert stack.status == Status.STOPPED

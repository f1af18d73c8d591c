"""Evacuating a host: operators only, a draining host only, one at a time, and an outcome that lists
what moved and what could not, with why."""

from __future__ import annotations

import pytest

from portal import errors
from portal.models import AuditEvent
from provisioning.models import Host, Operation, Stack, Status
from provisioning.services.evacuation import begin_evacuation, evacuation_under_way
from tests.factories import ApplianceVersionFactory, HostFactory
from tests.provisioning.placement_support import occupy


@pytest.fixture
def draining(db) -> Host:
    return HostFactory(name="old-hv", uri="test:///evacuated", draining=True)


def stack_on(host: Host, project, name: str, status: Status):
    """A one-tier stack on ``host`` in ``status`` (its rows only: the evacuation leaves such stacks be)."""
    occupy(host, project, ApplianceVersionFactory(), (1, 256), name=name)
    stack = Stack.objects.get(name=name, project=project)
    Stack.objects.filter(pk=stack.pk).update(status=status)
    stack.instances.update(status=status)
    stack.refresh_from_db()
    return stack


def evacuate(step, user, host: Host) -> Operation:
    operation = step(lambda: begin_evacuation(user=user, host=host))
    operation.refresh_from_db()
    return operation


# Who may ask, and when


@pytest.mark.parametrize("who", ["owner", "member", "outsider"])
def test_only_operators_may_evacuate_by_api(api, draining, request, who):
    user = request.getfixturevalue(who)
    answer = api(user).post(f"/api/v1/hosts/{draining.pk}/evacuate/")
    assert answer.status_code == 403
    assert not Operation.objects.exists()
    assert api().post(f"/api/v1/hosts/{draining.pk}/evacuate/").status_code in (401, 403)


def test_the_service_refuses_a_non_operator(member, draining):
    with pytest.raises(errors.PermissionDenied):
        begin_evacuation(user=member, host=draining)


def test_an_operator_gets_202_and_the_operation(api, operator, draining, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(operator).post(f"/api/v1/hosts/{draining.pk}/evacuate/")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["kind"] == "evacuate_host"
    assert body["host"] == "old-hv"
    assert body["url"].endswith(f"/api/v1/operations/{body['id']}/")
    operation = Operation.objects.get(pk=body["id"])
    assert operation.status == Operation.State.SUCCEEDED  # the job ran inline: nothing was on the host
    assert operation.detail == "old-hv ran no stack: nothing to move"
    assert operation.result == {"moved": [], "left": []}
    assert AuditEvent.objects.filter(action="host.evacuate").count() == 1
    # The operation is the operators': members of no project see it in the list, operators do.
    assert api(operator).get(f"/api/v1/operations/{operation.pk}/").json()["status"] == "succeeded"


def test_a_host_that_is_not_draining_is_refused(api, operator, db):
    host = HostFactory(name="busy-hv", uri="test:///not-draining")
    answer = api(operator).post(f"/api/v1/hosts/{host.pk}/evacuate/")
    assert answer.status_code == 409
    assert "drain it first" in answer.json()["detail"]
    assert api(operator).post("/api/v1/hosts/999999/evacuate/").status_code == 404


def test_a_second_evacuation_while_one_is_pending_is_refused(api, operator, draining):
    first = begin_evacuation(user=operator, host=draining)  # its job is not run: it stays pending
    assert evacuation_under_way(draining) == first
    with pytest.raises(errors.WrongState, match=rf"being evacuated already \(operation {first.pk}\)"):
        begin_evacuation(user=operator, host=draining)
    assert api(operator).post(f"/api/v1/hosts/{draining.pk}/evacuate/").status_code == 409
    assert Operation.objects.count() == 1


def test_an_evacuation_may_be_asked_again_once_the_last_ended(step, operator, draining):
    assert evacuate(step, operator, draining).finished
    assert evacuate(step, operator, draining).finished
    assert Operation.objects.filter(kind=Operation.Kind.EVACUATE_HOST).count() == 2


# The outcome: what moved, what was left and why


def test_stacks_that_are_not_running_are_left_with_their_reason(step, operator, project, draining):
    stopped = stack_on(draining, project, "stopped-one", Status.STOPPED)
    shelved = stack_on(draining, project, "shelved-one", Status.SHELVED)
    broken = stack_on(draining, project, "broken-one", Status.ERROR)
    elsewhere = HostFactory(name="other-hv", uri="test:///elsewhere")
    stack_on(elsewhere, project, "not-here", Status.STOPPED)

    operation = evacuate(step, operator, draining)

    left = {item["name"]: item for item in operation.result["left"]}
    assert set(left) == {"stopped-one", "shelved-one", "broken-one"}  # only the host's own stacks
    assert left["stopped-one"]["stack"] == stopped.pk
    assert left["stopped-one"]["reason"].startswith("it is stopped")
    assert left["shelved-one"]["reason"].startswith("it is shelved")
    assert left["broken-one"]["reason"].startswith("it is in error")
    assert broken.pk == left["broken-one"]["stack"]
    assert shelved.pk == left["shelved-one"]["stack"]
    assert operation.result["moved"] == []
    # Nothing running was to move: the host is not emptied, but nothing failed either.
    assert operation.status == Operation.State.PARTIAL
    assert operation.detail == "moved 0 stacks off old-hv; 3 stacks not running stay there"
    assert operation.progress_percent == 100
    assert operation.started_at is not None
    assert operation.finished_at is not None


def test_a_busy_stack_is_left_running_where_it_is(step, operator, project, draining):
    busy = stack_on(draining, project, "snapping", Status.SNAPSHOTTING)

    operation = evacuate(step, operator, draining)

    (left,) = operation.result["left"]
    assert left["stack"] == busy.pk
    assert left["reason"] == "it is snapshotting: another job owns it; it stays here"
    assert operation.status == Operation.State.FAILED
    assert operation.detail == "none of the 1 stack running on old-hv could move"
    busy.refresh_from_db()
    assert busy.status == Status.SNAPSHOTTING  # untouched


def test_a_deleted_stack_is_not_counted(step, operator, project, draining):
    stack_on(draining, project, "gone", Status.DELETED)
    operation = evacuate(step, operator, draining)
    assert operation.status == Operation.State.SUCCEEDED
    assert operation.result == {"moved": [], "left": []}


def test_every_evacuation_operation_has_an_api_summary():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/hosts/{id}/evacuate/", "/api/v1/hosts/{id}/maintenance/"):
        assert schema["paths"][path]["post"]["summary"]


def test_an_evacuation_whose_worker_died_no_longer_blocks_the_next(step, operator, draining, settings):
    from datetime import timedelta

    from django.utils import timezone

    lost = begin_evacuation(user=operator, host=draining)  # never run
    old = timezone.now() - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS + 60)
    Operation.objects.filter(pk=lost.pk).update(created_at=old, status=Operation.State.RUNNING)

    fresh = evacuate(step, operator, draining)

    lost.refresh_from_db()
    assert lost.status == Operation.State.FAILED
    assert lost.detail == "the worker evacuating the host stopped; evacuate again"
    assert fresh.status == Operation.State.SUCCEEDED


def test_stacks_not_tried_in_time_are_left_with_why(step, operator, project, draining, settings):
    settings.TASK_TIMEOUT_SECONDS = -1  # as if half the task's time were spent before the first move
    stack_on(draining, project, "late", Status.RUNNING)
    operation = evacuate(step, operator, draining)
    (left,) = operation.result["left"]
    assert left["reason"] == "not tried: the evacuation ran out of time; evacuate the host again"
    assert operation.status == Operation.State.FAILED

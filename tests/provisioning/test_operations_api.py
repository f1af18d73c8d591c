"""GET /api/v1/operations/: members see their projects' operations, operators every one (evacuations too)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import Operation, Stack
from provisioning.services.operations import (
    open_operation,
    operation_finished,
    operation_progress,
    operation_running,
)
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db


def stack_in(project, name="shop") -> Stack:
    return Stack.objects.create(project=project, name=name, expires_at=timezone.now() + timedelta(hours=1))


@pytest.fixture
def operations(project, other_project, operator):
    host = HostFactory()
    return {
        "ours": open_operation(kind=Operation.Kind.RESIZE, user=operator, stack=stack_in(project)),
        "theirs": open_operation(kind=Operation.Kind.MIGRATE_STACK, user=operator, stack=stack_in(other_project)),
        "evacuation": open_operation(kind=Operation.Kind.EVACUATE_HOST, user=operator, host=host),
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_member_sees_only_their_projects_operations(api, member, operations):
    assert ids(api(member).get("/api/v1/operations/")) == {operations["ours"].pk}
    assert api(member).get(f"/api/v1/operations/{operations['theirs'].pk}/").status_code == 404
    assert api(member).get(f"/api/v1/operations/{operations['evacuation'].pk}/").status_code == 404


def test_an_operator_sees_every_operation(api, operator, operations):
    assert ids(api(operator).get("/api/v1/operations/")) == {op.pk for op in operations.values()}


def test_anonymous_callers_see_nothing(api, operations):
    assert api().get("/api/v1/operations/").status_code in (401, 403)


def test_an_operation_moves_from_pending_to_its_end_and_stays_there(api, member, operations):
    op = operations["ours"]
    operation_running(op.pk, detail="resizing web")
    operation_progress(op.pk, percent=140, detail="half way")  # clamped
    body = api(member).get(f"/api/v1/operations/{op.pk}/").json()
    assert (body["status"], body["progress_percent"], body["detail"], body["finished"]) == (
        "running",
        100,
        "half way",
        False,
    )
    assert body["started_at"] is not None
    operation_finished(op.pk, status=Operation.State.SUCCEEDED, detail="resized", result={"applied": "live"})
    operation_finished(op.pk, status=Operation.State.FAILED, detail="too late")  # a final state is kept
    operation_progress(op.pk, percent=5)
    body = api(member).get(f"/api/v1/operations/{op.pk}/").json()
    assert (body["status"], body["detail"], body["result"], body["finished"], body["progress_percent"]) == (
        "succeeded",
        "resized",
        {"applied": "live"},
        True,
        100,
    )
    assert body["created_by"] == "root-op"


def test_only_a_final_state_may_end_an_operation(operations):
    with pytest.raises(ValueError, match="not a final state"):
        operation_finished(operations["ours"].pk, status=Operation.State.RUNNING, detail="no")


def test_operations_filter_by_kind(api, operator, operations):
    listed = ids(api(operator).get("/api/v1/operations/?kind=evacuate_host"))
    assert listed == {operations["evacuation"].pk}

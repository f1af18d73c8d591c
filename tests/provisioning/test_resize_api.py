"""``POST /api/v1/stacks/{id}/resize/``: who may, what it answers, and its operation."""

from __future__ import annotations

import pytest

from provisioning.models import Host, Instance, Operation, Status
from provisioning.services.launch import stack_launch


@pytest.fixture
def web(member, project, test_host, ready_version, step):
    stack = step(
        lambda: stack_launch(
            user=member, project=project, name="demo", appliance_version=ready_version, lease_seconds=3600
        )
    )
    stack.refresh_from_db()
    return stack


def post(api, user, stack, body, step=None):
    send = lambda: api(user).post(f"/api/v1/stacks/{stack.pk}/resize/", body, format="json")  # noqa: E731
    return step(send) if step else send()


@pytest.mark.parametrize("who", ["owner", "member"])
def test_members_resize_and_get_the_operation(request, api, web, step, who):
    user = request.getfixturevalue(who)
    answer = post(api, user, web, {"tier": "web", "vcpus": 2}, step)
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert (body["kind"], body["stack"], body["request"]) == ("resize", web.pk, {"tier": "web", "vcpus": 2})
    assert body["created_by"] == user.username
    assert body["url"].endswith(f"/api/v1/operations/{body['id']}/")
    polled = api(user).get(f"/api/v1/operations/{body['id']}/").json()
    assert polled["status"] == "succeeded"
    assert polled["result"]["applied"] == "live"
    assert Instance.objects.get().vcpus == 2


def test_a_viewer_is_refused_and_an_outsider_finds_nothing(api, web, viewer, outsider):
    assert post(api, viewer, web, {"tier": "web", "vcpus": 2}).status_code == 403
    answer = post(api, outsider, web, {"tier": "web", "vcpus": 2})
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert post(api, None, web, {"tier": "web", "vcpus": 2}).status_code in (401, 403)
    assert not Operation.objects.exists()
    assert Instance.objects.get().vcpus == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vcpus": 2}, "tier"),
        ({"tier": "web", "vcpus": 0}, "vcpus"),
        ({"tier": "web", "vcpus": "2"}, "vcpus"),
        ({"tier": "web", "memory_mib": 10**9}, "memory_mib"),
        ({"tier": "web", "cpus": 2}, "cpus"),
        ({"tier": "web", "disk_gib": -1}, "disk_gib"),
    ],
)
def test_bad_input_is_refused_by_field(api, web, member, body, field):
    answer = post(api, member, web, body)
    assert answer.status_code == 400
    assert field in answer.json()["fields"]


def test_refusals_answer_in_the_api_error_body(api, web, member, project):
    project.max_memory_mib = 200
    project.save()
    quota = post(api, member, web, {"tier": "web", "memory_mib": 512})
    assert quota.status_code == 403
    assert quota.json()["code"] == "quota_exceeded"
    assert "MiB of memory" in quota.json()["detail"]
    Host.objects.update(cpus=1, cpu_overcommit=1)
    full = post(api, member, web, {"tier": "web", "vcpus": 2})
    assert full.status_code == 409
    assert full.json()["code"] == "no_capacity"
    Instance.objects.update(disk_gib=3)
    shrink = post(api, member, web, {"tier": "web", "disk_gib": 2})
    assert shrink.status_code == 400
    assert "disks only grow" in shrink.json()["fields"]["disk_gib"][0]


def test_a_busy_stack_answers_409(api, web, member):
    web.status = Status.RESIZING
    web.save()
    answer = post(api, member, web, {"tier": "web", "vcpus": 2})
    assert answer.status_code == 409
    assert "resizing" in answer.json()["detail"]


def test_the_schema_documents_the_operation(api, member):
    schema = api(member).get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/stacks/{id}/resize/"]["post"]
    assert operation["summary"].startswith("Resize")
    assert {"202", "400", "403", "404", "409"} <= set(operation["responses"])

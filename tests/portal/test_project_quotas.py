"""Project quotas in the API, the admin and the stacks page: read by members, changed by operators only."""

from __future__ import annotations

import pytest
from django.test import Client

from portal import errors, services
from portal.models import AuditEvent, Project
from provisioning.models import Instance
from provisioning.services.launch import stack_launch

QUOTA_KEYS = {"stacks", "instances", "vcpus", "memory_mib", "disk_gib", "lease_seconds"}


def patch(client, project: Project, body: dict):
    return client.patch(f"/api/v1/projects/{project.pk}/", body, format="json")


# Refusals first.


def test_members_and_owners_may_not_change_quotas(api, member, owner, viewer, project):
    for user in (member, owner, viewer):
        response = patch(api(user), project, {"quota": {"instances": 99}})
        assert response.status_code == 403, user
        assert response.json() == {
            "code": "permission_denied",
            "detail": "only operators may create projects or change their quotas",
        }
    # Even a body that is wrong: who may do it is checked first.
    assert patch(api(member), project, {"quota": {"instances": -1}}).status_code == 403
    project.refresh_from_db()
    assert project.max_instances == 10
    assert not AuditEvent.objects.exists()


def test_outsiders_do_not_learn_the_project_exists(api, outsider, project):
    response = patch(api(outsider), project, {"quota": {"instances": 99}})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert api(outsider).get(f"/api/v1/projects/{project.pk}/").status_code == 404
    assert api().patch(f"/api/v1/projects/{project.pk}/", {}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"quota": {"instances": -1}}, "quota.instances", "greater than or equal to 0"),
        ({"quota": {"vcpus": 2**31}}, "quota.vcpus", "less than or equal to 2147483647"),
        ({"quota": {"memory_mib": "lots"}}, "quota.memory_mib", "A valid integer is required."),
        (
            {"quota": {"lease_seconds": 59}},
            "quota.lease_seconds",
            "the longest lease must be between 1 minute and 7 days",
        ),
        (
            {"quota": {"lease_seconds": 10**8}},
            "quota.lease_seconds",
            "the longest lease must be between 1 minute and 7 days",
        ),
        ({"quota": {"cpus": 4}}, "quota.cpus", "no such quota"),
        ({"quota": 5}, "quota.non_field_errors", "Invalid data. Expected a dictionary, but got int."),
        ({"name": "renamed", "quota": {}}, "name", "cannot be changed here; only quota can"),
    ],
)
def test_bad_values_are_400_with_the_common_error_body(api, operator, project, body, field, message):
    response = patch(api(operator), project, body)
    assert response.status_code == 400, response.content
    error = response.json()
    assert set(error) == {"code", "detail", "fields"}
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert message in error["fields"][field][0]
    assert message in error["detail"]
    assert Project.objects.get(pk=project.pk).max_instances == 10
    assert not AuditEvent.objects.exists()


def test_the_service_refuses_fields_projects_do_not_have(operator, project):
    with pytest.raises(errors.Invalid, match="a project has no setting called max_hosts"):
        services.project_update(actor=operator, project=project, max_hosts=3)


# What works.


def test_members_read_quota_and_usage(api, member, project, test_host, ready_version):
    stack_launch(user=member, project=project, name="one", appliance_version=ready_version, lease_seconds=600)
    body = api(member).get(f"/api/v1/projects/{project.pk}/").json()
    assert body["quota"] == {
        "stacks": 5,
        "instances": 10,
        "vcpus": 16,
        "memory_mib": 16384,
        "disk_gib": 200,
        "lease_seconds": 7 * 24 * 3600,
    }
    assert body["usage"] == {
        "stacks": 1,
        "instances": 1,
        "vcpus": ready_version.min_vcpus,
        "memory_mib": ready_version.min_ram_mib,
        "disk_gib": Instance.objects.get().disk_gib,  # the image's size, rounded up
    }
    assert body["role"] == "member"
    listed = api(member).get("/api/v1/projects/").json()["results"]
    assert [(row["name"], row["usage"]["stacks"], set(row["quota"])) for row in listed] == [("alpha", 1, QUOTA_KEYS)]


def test_operators_change_limits_and_it_is_audited(api, operator, project, member):
    response = patch(api(operator), project, {"quota": {"instances": 20, "lease_seconds": 3600, "vcpus": 16}})
    assert response.status_code == 200, response.content
    assert response.json()["quota"]["instances"] == 20
    assert response.json()["quota"]["lease_seconds"] == 3600
    assert response.json()["usage"]["instances"] == 0
    project.refresh_from_db()
    assert (project.max_instances, project.max_lease_seconds, project.max_vcpus) == (20, 3600, 16)
    audit = AuditEvent.objects.get()
    assert (audit.action, audit.actor, audit.project) == ("project.update", operator, project)
    # Only what changed (vcpus was 16 already), old and new.
    assert audit.detail == {"changes": {"max_instances": [10, 20], "max_lease_seconds": [604800, 3600]}}
    assert api(member).get(f"/api/v1/projects/{project.pk}/").json()["quota"]["instances"] == 20


def test_a_lowered_limit_refuses_the_next_launch(api, operator, member, project, test_host, ready_version):
    stack_launch(user=member, project=project, name="one", appliance_version=ready_version)
    assert patch(api(operator), project, {"quota": {"stacks": 1}}).status_code == 200
    with pytest.raises(errors.QuotaExceeded, match="may hold 1 stacks, 1 are in use and this stack needs 1"):
        stack_launch(user=member, project=project, name="two", appliance_version=ready_version)


@pytest.fixture
def operator_client(operator):
    client = Client()
    client.force_login(operator)
    return client


def _admin_form(project: Project, **changes) -> dict:
    form = {field: getattr(project, field) for field in services.PROJECT_FIELDS}
    return {**form, **changes, "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0}


def test_the_admin_changes_limits_through_the_service(operator_client, operator, project):
    response = operator_client.post(
        f"/admin/portal/project/{project.pk}/change/", _admin_form(project, max_stacks=7, max_disk_gib=500)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert (project.max_stacks, project.max_disk_gib) == (7, 500)
    audit = AuditEvent.objects.get(action="project.update")
    assert audit.actor == operator
    assert audit.detail == {"changes": {"max_stacks": [5, 7], "max_disk_gib": [200, 500]}}


def test_the_admin_shows_the_services_refusal_on_the_form(operator_client, project):
    response = operator_client.post(
        f"/admin/portal/project/{project.pk}/change/", _admin_form(project, max_lease_seconds=30)
    )
    assert response.status_code == 200
    assert "the longest lease must be between 1 minute and 7 days" in response.content.decode()
    project.refresh_from_db()
    assert project.max_lease_seconds == 7 * 24 * 3600


def test_the_admin_creates_projects_through_the_service(operator_client, operator, db):
    blank = Project(name="gamma")
    response = operator_client.post("/admin/portal/project/add/", _admin_form(blank, max_instances=3))
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Project.objects.get(name="gamma")
    assert created.max_instances == 3
    assert AuditEvent.objects.filter(action="project.create", actor=operator, project=created).count() == 1


def test_the_stacks_page_shows_every_quota_line(client, member, project, test_host, ready_version):
    stack_launch(user=member, project=project, name="one", appliance_version=ready_version, lease_seconds=600)
    client.force_login(member)
    page = client.get("/stacks/").content.decode()
    for what, used, limit in [
        ("stacks", 1, 5),
        ("instances", 1, 10),
        ("vCPUs", 1, 16),
        ("MiB of memory", ready_version.min_ram_mib, 16384),
        ("GiB of disk", Instance.objects.get().disk_gib, 200),
    ]:
        assert f">{what}</span>" in page
        assert f'aria-valuemax="{limit}" aria-valuenow="{used}"' in page
        assert f"{used} of {limit}" in page
    assert "7 days" in page

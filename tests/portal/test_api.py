"""The REST API: tokens, scoping (owner / member / outsider), launch and delete, hosts, feeds."""

from __future__ import annotations

import pytest

from catalog.models import Feed
from provisioning.models import Host, Stack, Status
from tests.factories import FeedFactory, ProjectFactory


@pytest.fixture
def launched(member, project, test_host, ready_version, api, django_capture_on_commit_callbacks):
    body = {"name": "web1", "project": project.pk, "appliance": ready_version.appliance.pk, "lease": 600}
    with django_capture_on_commit_callbacks(execute=True):
        response = api(member).post("/api/v1/stacks/", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def test_anonymous_is_asked_to_authenticate(api, db):
    response = api().get("/api/v1/stacks/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"code": "not_authenticated", "detail": "Authentication credentials were not provided."}


def test_launch_answers_at_once_with_the_stack(launched, project):
    assert set(launched) >= {"id", "name", "project", "status", "status_reason", "expires_at", "endpoints", "instances"}
    assert launched["project"] == project.pk
    assert launched["status"] == Status.PENDING  # the response is written before the worker runs


def test_stack_json_shows_running_endpoint_and_instances(launched, member, api):
    stack = api(member).get(f"/api/v1/stacks/{launched['id']}/").json()
    assert stack["status"] == "running"
    (endpoint,) = stack["endpoints"]
    assert endpoint["role"] == "web"
    assert endpoint["guest_port"] == 80
    assert endpoint["url"].startswith("http://localhost:")  # PORTAL_ENDPOINT_HOST, not the portal's host
    (instance,) = stack["instances"]
    assert set(instance) >= {"id", "name", "role", "status", "host"}
    assert instance["host"] == "test-host"


def test_outsider_gets_404_on_another_projects_stack(launched, outsider, api):
    client = api(outsider)
    assert client.get(f"/api/v1/stacks/{launched['id']}/").status_code == 404
    assert client.delete(f"/api/v1/stacks/{launched['id']}/").status_code == 404
    assert client.get("/api/v1/stacks/").json()["results"] == []
    assert Stack.objects.get(pk=launched["id"]).status == Status.RUNNING


def test_owner_sees_and_deletes(launched, owner, api, django_capture_on_commit_callbacks):
    client = api(owner)
    assert [s["id"] for s in client.get("/api/v1/stacks/").json()["results"]] == [launched["id"]]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"/api/v1/stacks/{launched['id']}/")
    assert response.status_code == 202
    assert response.json()["status"] == "deleting"
    assert client.get(f"/api/v1/stacks/{launched['id']}/").json()["status"] == "deleted"


def test_viewer_may_look_but_not_delete(launched, viewer, api):
    client = api(viewer)
    assert client.get(f"/api/v1/stacks/{launched['id']}/").status_code == 200
    response = client.delete(f"/api/v1/stacks/{launched['id']}/")
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "detail": "this needs the member role in project alpha: ask one of its owners",
    }


def test_launch_into_a_foreign_project_is_refused(outsider, project, ready_version, test_host, api):
    body = {"name": "x", "project": project.pk, "appliance": ready_version.appliance.pk}
    response = api(outsider).post("/api/v1/stacks/", body, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["fields"]) == ["project"]
    assert "does not exist" in body["fields"]["project"][0]
    assert not Stack.objects.exists()


def test_over_quota_is_403_with_a_reason(member, project, ready_version, test_host, api):
    project.max_instances = 0
    project.save()
    body = {"name": "x", "project": project.pk, "appliance": ready_version.appliance.pk}
    response = api(member).post("/api/v1/stacks/", body, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "quota_exceeded"
    assert "quota exceeded" in response.json()["detail"]


def test_no_host_is_409(member, project, ready_version, api):
    body = {"name": "x", "project": project.pk, "appliance": ready_version.appliance.pk}
    response = api(member).post("/api/v1/stacks/", body, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "no_capacity"
    assert "no host" in response.json()["detail"]


def test_unknown_version_is_400(member, project, ready_version, test_host, api):
    body = {"name": "x", "project": project.pk, "appliance": ready_version.appliance.pk, "version": "9.9"}
    response = api(member).post("/api/v1/stacks/", body, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"version": ["appliance 'Demo web' has no such version"]}


def test_projects_list_only_mine(member, project, other_project, api):
    ProjectFactory(name="gamma")
    names = [p["name"] for p in api(member).get("/api/v1/projects/").json()["results"]]
    assert names == ["alpha"]


def test_feeds_are_scoped_and_created_in_the_background(member, project, other_project, api):
    FeedFactory(project=other_project, url="https://example.org/theirs.xml")
    shared = FeedFactory(project=None, url="https://example.org/shared.xml")
    response = api(member).post(
        "/api/v1/feeds/", {"url": "https://example.org/mine.xml", "project": project.pk}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["last_status"] == "queued"
    urls = {f["url"] for f in api(member).get("/api/v1/feeds/").json()["results"]}
    assert urls == {"https://example.org/mine.xml", shared.url}


def test_feed_with_a_bad_scheme_is_400(member, project, api):
    response = api(member).post("/api/v1/feeds/", {"url": "javascript:alert(1)", "project": project.pk}, format="json")
    assert response.status_code == 400
    assert not Feed.objects.exists()


def test_appliances_of_other_projects_are_invisible(member, other_project, ready_version, api):
    from tests.factories import ApplianceVersionFactory

    ApplianceVersionFactory(appliance__feed__project=other_project, appliance__title="Secret")
    titles = [a["title"] for a in api(member).get("/api/v1/appliances/").json()["results"]]
    assert titles == ["Demo web"]


def test_hosts_are_for_operators_only(member, api, db):
    response = api(member).get("/api/v1/hosts/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_operator_registers_a_host_through_the_driver(operator, api):
    body = {
        "name": "t1",
        "uri": "test:///default",
        "domain_type": "qemu",
        "storage_pool": "default-pool",
        "storage_pool_path": "/default-pool",
    }
    response = api(operator).post("/api/v1/hosts/", body, format="json")
    assert response.status_code == 201, response.content
    host = response.json()
    assert host["healthy"] is True
    assert host["cpus"] == 16  # the test driver's node
    assert host["hypervisor"] == "TEST"


@pytest.mark.parametrize(
    "uri", ["qemu+unix:///system?socket=/run/portal-no-such-host/libvirt-sock", "test:///no/such/node.xml"]
)
def test_unknown_host_uri_is_400_and_adds_nothing(operator, api, uri):
    response = api(operator).post("/api/v1/hosts/", {"name": "bad", "uri": uri}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["fields"]["uri"][0].startswith(f"cannot use host {uri}: ")
    assert not Host.objects.exists()


def test_schema_is_served(member, api):
    response = api(member).get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"/api/v1/stacks/" in response.content


def test_api_root_lists_the_collections(member, api):
    response = api(member).get("/api/v1/")
    assert response.status_code == 200
    assert set(response.json()) == {
        "projects",
        "tokens",
        "feeds",
        "appliances",
        "hosts",
        "stacks",
        "templates",
        "notifications",
        "operations",
        "flavors",
    }


def test_renewing_the_lease_moves_the_expiry(launched, member, api):
    from datetime import datetime, timedelta

    from django.utils import timezone

    response = api(member).post(f"/api/v1/stacks/{launched['id']}/lease/", {"lease": 7200}, format="json")
    assert response.status_code == 200, response.content
    expires = datetime.fromisoformat(response.json()["expires_at"])
    assert timedelta(seconds=7100) < expires - timezone.now() <= timedelta(seconds=7200)


def test_lease_renewal_is_checked(launched, member, viewer, outsider, api):
    url = f"/api/v1/stacks/{launched['id']}/lease/"
    assert api(member).post(url, {"lease": 10**9}, format="json").status_code == 400
    assert api(viewer).post(url, {"lease": 3600}, format="json").status_code == 403
    assert api(outsider).post(url, {"lease": 3600}, format="json").status_code == 404


def test_projects_show_the_callers_role(member, viewer, operator, project, api):
    assert [p["role"] for p in api(member).get("/api/v1/projects/").json()["results"]] == ["member"]
    assert [p["role"] for p in api(viewer).get("/api/v1/projects/").json()["results"]] == ["viewer"]
    assert {p["role"] for p in api(operator).get("/api/v1/projects/").json()["results"]} == {"owner"}


def test_a_renewal_that_would_shorten_the_lease_must_say_so(launched, member, api):
    from provisioning.models import Stack

    url = f"/api/v1/stacks/{launched['id']}/lease/"
    assert api(member).post(url, {"lease": 86400}, format="json").status_code == 200
    before = Stack.objects.get(pk=launched["id"]).expires_at
    refused = api(member).post(url, {"lease": 900}, format="json")
    assert refused.status_code == 400
    assert refused.json()["fields"]["lease"][0].startswith("this would end the lease earlier")
    assert Stack.objects.get(pk=launched["id"]).expires_at == before
    assert api(member).post(url, {"lease": 900, "shorten": True}, format="json").status_code == 200
    assert Stack.objects.get(pk=launched["id"]).expires_at < before


def test_renewals_cannot_keep_a_stack_beyond_the_projects_longest_lifetime(launched, member, project, api):
    from datetime import timedelta

    from provisioning.models import Stack

    project.max_lease_seconds = 2 * 3600
    project.save()
    url = f"/api/v1/stacks/{launched['id']}/lease/"
    assert api(member).post(url, {"lease": 1800}, format="json").status_code == 200
    # An hour later, another two hours would end three hours after creation: over the lifetime.
    Stack.objects.filter(pk=launched["id"]).update(
        created_at=Stack.objects.get(pk=launched["id"]).created_at - timedelta(hours=1)
    )
    refused = api(member).post(url, {"lease": 7200}, format="json")
    assert refused.status_code == 400
    assert "lets a stack live at most 2 hours from its creation" in refused.json()["fields"]["lease"][0]
    assert api(member).post(url, {"lease": 3000}, format="json").status_code == 200


def test_a_private_appliance_of_one_project_cannot_be_launched_in_another(
    member, project, other_project, ready_version, test_host, api
):
    """The member sees B's private appliance (they are in B too) but launching it into A is refused."""
    from portal.models import Role
    from tests.factories import ApplianceVersionFactory, FeedFactory, MembershipFactory

    MembershipFactory(project=other_project, user=member, role=Role.MEMBER)
    private = ApplianceVersionFactory(
        appliance__feed=FeedFactory(project=other_project), image=ready_version.image, delivered=True
    )
    body = {"name": "x", "project": project.pk, "appliance": private.appliance.pk}
    response = api(member).post("/api/v1/stacks/", body, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"appliance": ["no such appliance in this project's catalog"]}
    assert not Stack.objects.exists()
    body["project"] = other_project.pk  # in its own project it launches
    assert api(member).post("/api/v1/stacks/", body, format="json").status_code == 202

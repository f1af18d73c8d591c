"""The API of a stack's life: power, shelve, snapshots and extension, with the same rules as the pages."""

from __future__ import annotations

from provisioning.models import Stack, StackSnapshot, Status


def post(step, client, url, data=None):
    return step(lambda: client.post(url, data or {}, format="json"))


def test_an_outsider_naming_another_projects_stack_gets_404_and_nothing_changes(shop, outsider, api, step):
    client = api(outsider)
    for action in ("start", "shutdown", "poweroff", "reboot", "shelve", "unshelve", "extend", "snapshots"):
        assert post(step, client, f"/api/v1/stacks/{shop.pk}/{action}/").status_code == 404, action
    instance = shop.instances.first()
    assert post(step, client, f"/api/v1/instances/{instance.pk}/shutdown/").status_code == 404
    assert client.get(f"/api/v1/stacks/{shop.pk}/snapshots/").status_code == 404
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING


def test_a_viewer_reads_but_cannot_act(shop, viewer, api, step):
    client = api(viewer)
    assert client.get(f"/api/v1/stacks/{shop.pk}/snapshots/").status_code == 200
    assert post(step, client, f"/api/v1/stacks/{shop.pk}/shutdown/").status_code == 403
    assert post(step, client, f"/api/v1/stacks/{shop.pk}/snapshots/", {"name": "x"}).status_code == 403
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING


def test_bad_bodies_are_refused_by_field(shop, member, api, step):
    client = api(member)
    answer = post(step, client, f"/api/v1/stacks/{shop.pk}/snapshots/", {"name": "No Good"})
    assert answer.status_code == 400
    assert "name" in answer.json()["fields"]
    answer = post(step, client, f"/api/v1/stacks/{shop.pk}/shelve/", {"memory": "maybe"})
    assert answer.status_code == 400
    answer = post(step, client, f"/api/v1/stacks/{shop.pk}/snapshots/", {"name": "ok", "extra": 1})
    assert answer.status_code == 400


def test_power_and_shelve_answer_202_and_the_stack_settles(shop, member, api, step):
    client = api(member)
    answer = post(step, client, f"/api/v1/stacks/{shop.pk}/shutdown/")
    assert answer.status_code == 202
    assert Stack.objects.get(pk=shop.pk).status == Status.STOPPED
    assert post(step, client, f"/api/v1/stacks/{shop.pk}/start/").status_code == 202
    assert Stack.objects.get(pk=shop.pk).status == Status.RUNNING
    assert post(step, client, f"/api/v1/stacks/{shop.pk}/shelve/", {"memory": True}).status_code == 202
    body = client.get(f"/api/v1/stacks/{shop.pk}/").json()
    assert body["status"] == "shelved"
    assert body["at_lease_end"] == "delete"
    assert body["shelved_at"]
    # Wrong state: a clear 409.
    answer = post(step, client, f"/api/v1/stacks/{shop.pk}/shutdown/")
    assert answer.status_code == 409
    assert "cannot shutdown a stack that is shelved" in answer.json()["detail"]
    assert post(step, client, f"/api/v1/stacks/{shop.pk}/unshelve/").status_code == 202
    assert client.get(f"/api/v1/stacks/{shop.pk}/").json()["status"] == "running"


def test_one_instance_is_powered_through_the_instances_api(shop, member, api, step):
    db = shop.instances.get(role="db")
    answer = post(step, api(member), f"/api/v1/instances/{db.pk}/poweroff/")
    assert answer.status_code == 202
    db.refresh_from_db()
    assert db.status == Status.STOPPED
    assert Stack.objects.get(pk=shop.pk).status == Status.RUNNING


def test_snapshots_are_listed_reverted_and_deleted(shop, member, api, step):
    client = api(member)
    answer = post(step, client, f"/api/v1/stacks/{shop.pk}/snapshots/", {"name": "base", "memory": True})
    assert answer.status_code == 202
    snapshot_id = answer.json()["id"]
    listed = client.get(f"/api/v1/stacks/{shop.pk}/snapshots/").json()["results"]
    assert [(s["name"], s["status"], s["memory"]) for s in listed] == [("base", "ready", True)]
    revert = f"/api/v1/stacks/{shop.pk}/snapshots/{snapshot_id}/revert/"
    assert post(step, client, revert).status_code == 202
    assert Stack.objects.get(pk=shop.pk).status == Status.RUNNING
    answer = step(lambda: client.delete(f"/api/v1/stacks/{shop.pk}/snapshots/{snapshot_id}/"))
    assert answer.status_code == 202
    assert not StackSnapshot.objects.filter(pk=snapshot_id).exists()


def test_a_snapshot_of_another_stack_cannot_be_named_through_this_one(shop, member, project, api, step):
    other = Stack.objects.create(project=project, name="other", expires_at=shop.expires_at, status=Status.RUNNING)
    foreign = StackSnapshot.objects.create(stack=other, name="x", libvirt_name="x", status="ready")
    answer = post(step, api(member), f"/api/v1/stacks/{shop.pk}/snapshots/{foreign.pk}/revert/")
    assert answer.status_code == 404


def test_the_stack_says_how_far_it_may_still_be_extended(shop, member, project, api, step):
    project.max_extension_seconds = 2 * 3600  # longer than the stack's lease
    project.save()
    body = api(member).get(f"/api/v1/stacks/{shop.pk}/").json()
    assert body["at_lease_end"] == "shelve"
    assert body["extendable_until"] > body["expires_at"]
    answer = post(step, api(member), f"/api/v1/stacks/{shop.pk}/extend/")
    assert answer.status_code == 200
    assert answer.json()["expires_at"] >= body["extendable_until"][:16]


def test_the_schema_names_every_action(api, member):
    schema = api(member).get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    for action in ("start", "shutdown", "poweroff", "reboot", "shelve", "unshelve", "extend", "snapshots"):
        assert f"/api/v1/stacks/{{id}}/{action}/" in paths, action
    assert "/api/v1/stacks/{id}/snapshots/{snapshot_id}/revert/" in paths
    assert "/api/v1/instances/{id}/shutdown/" in paths

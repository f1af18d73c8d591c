"""The lease policy page: outsiders see nothing, viewers and members read, owners change it in minutes."""

from __future__ import annotations

from portal.models import Project

FORM = {
    "run_lease": "60",
    "at_run_end": "delete",
    "storage_lease": "1440",
    "max_extension": "120",
    "max_life": "2880",
    "warn_before": "60, 10",
    "idle_after": "",
    "webhook_url": "",
    "webhook_secret": "",
}


def page(project: Project) -> str:
    return f"/projects/{project.pk}/policy/"


def test_an_outsider_gets_not_found(client, project, outsider):
    client.force_login(outsider)
    assert client.get(page(project)).status_code == 404
    assert client.post(page(project), FORM).status_code == 404


def test_a_viewer_reads_the_policy_but_may_not_post(client, project, viewer):
    client.force_login(viewer)
    text = client.get(page(project)).content.decode()
    assert "Ask an owner" in text
    assert '<form method="post" action="/projects' not in text
    assert client.post(page(project), FORM).status_code == 403
    project.refresh_from_db()
    assert project.run_lease_seconds == 4 * 3600


def test_a_run_lease_longer_than_the_longest_life_shows_on_the_form(client, project, owner):
    client.force_login(owner)
    response = client.post(page(project), {**FORM, "run_lease": "3000"})
    assert response.status_code == 200
    assert "may not be longer than the longest life" in response.content.decode()
    project.refresh_from_db()
    assert project.run_lease_seconds == 4 * 3600


def test_a_webhook_to_a_private_address_shows_on_the_form(client, project, owner):
    client.force_login(owner)
    body = {**FORM, "webhook_url": "http://169.254.169.254/", "webhook_secret": "a-webhook-secret-of-some-length"}
    response = client.post(page(project), body)
    assert "non-public address" in response.content.decode()
    project.refresh_from_db()
    assert project.webhook_url == ""


def test_an_owner_saves_the_policy_in_minutes(client, project, owner):
    client.force_login(owner)
    response = client.post(page(project), FORM)
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.run_lease_seconds == 3600
    assert project.at_run_end == "delete"
    assert project.storage_lease_seconds == 86400
    assert project.max_extension_seconds == 7200
    assert project.max_lease_seconds == 2 * 86400
    assert project.warn_before == [3600, 600]


def test_saving_unchanged_fields_does_not_round_what_the_api_set(client, project, owner):
    Project.objects.filter(pk=project.pk).update(run_lease_seconds=90)  # not a whole minute
    client.force_login(owner)
    form = client.get(page(project)).context["form"]
    unchanged = {name: form.initial.get(name) if form.initial.get(name) is not None else "" for name in FORM}
    unchanged["webhook_secret"] = ""
    assert client.post(page(project), {**unchanged, "storage_lease": "600"}).status_code == 302
    project.refresh_from_db()
    assert (project.run_lease_seconds, project.storage_lease_seconds) == (90, 36000)


def test_the_members_page_links_to_the_policy(client, project, member):
    client.force_login(member)
    assert page(project) in client.get(f"/projects/{project.pk}/members/").content.decode()

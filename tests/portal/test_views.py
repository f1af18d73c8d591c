"""The web pages: sign-in, catalog, launch form, stack page and its live part, delete; scoped like the API."""

from __future__ import annotations

import pytest

from provisioning.models import Stack, Status


@pytest.fixture
def browser(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


def test_pages_need_a_login(client, db):
    for url in ("/stacks/", "/catalog/", "/stacks/launch/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/login/")


def test_sign_in_with_password(client, member):
    response = client.post("/login/", {"username": member.username, "password": "pw"})
    assert response.status_code == 302
    assert client.get("/stacks/").status_code == 200


def test_catalog_lists_visible_appliances(browser, member, ready_version):
    page = browser(member).get("/catalog/").content.decode()
    assert "Demo web" in page
    assert f"/stacks/launch/?version={ready_version.pk}" in page


def test_launch_form_creates_a_stack_and_shows_it(
    browser, member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    web = browser(member)
    form = {"name": "site", "project": project.pk, "appliance_version": ready_version.pk, "lease_seconds": 3600}
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post("/stacks/launch/", form)
    stack = Stack.objects.get(name="site")
    assert response.status_code == 302
    assert response.url == f"/stacks/{stack.pk}/"
    page = web.get(response.url).content.decode()
    assert "Running" in page
    port = stack.instances.get().published_ports.get()
    assert f'href="{port.url}"' in page
    assert "every 2s" not in page  # a settled stack is no longer polled fast (only slowly, for the lease's end)


def test_launch_form_shows_the_quota_error(browser, member, project, test_host, ready_version):
    project.max_instances = 0
    project.save()
    form = {"name": "site", "project": project.pk, "appliance_version": ready_version.pk, "lease_seconds": 3600}
    page = browser(member).post("/stacks/launch/", form).content.decode()
    assert "may hold 0 instances" in page
    assert not Stack.objects.exists()


def test_viewer_cannot_pick_the_project_in_the_form(browser, viewer, project, test_host, ready_version):
    form = {"name": "site", "project": project.pk, "appliance_version": ready_version.pk, "lease_seconds": 3600}
    response = browser(viewer).post("/stacks/launch/", form)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Stack.objects.exists()


def test_pending_stack_page_polls_its_status(browser, member, project, test_host, ready_version):
    from provisioning.services import launch

    stack = launch.stack_launch(
        user=member, project=project, name="slow", appliance_version=ready_version, lease_seconds=600
    )
    page = browser(member).get(f"/stacks/{stack.pk}/").content.decode()
    assert f'hx-get="/stacks/{stack.pk}/status/"' in page
    fragment = browser(member).get(f"/stacks/{stack.pk}/status/").content.decode()
    assert "Pending" in fragment
    assert "<html" not in fragment


def test_outsider_gets_404_on_every_stack_page(browser, member, outsider, project, test_host, ready_version):
    from provisioning.services import launch

    stack = launch.stack_launch(
        user=member, project=project, name="private", appliance_version=ready_version, lease_seconds=600
    )
    web = browser(outsider)
    for url in (f"/stacks/{stack.pk}/", f"/stacks/{stack.pk}/status/"):
        assert web.get(url).status_code == 404
    assert web.post(f"/stacks/{stack.pk}/delete/").status_code == 404
    assert "private" not in web.get("/stacks/").content.decode()
    stack.refresh_from_db()
    assert stack.status == Status.PENDING


def test_delete_button(browser, member, project, test_host, ready_version, django_capture_on_commit_callbacks):
    from provisioning.services import launch

    with django_capture_on_commit_callbacks(execute=True):
        stack = launch.stack_launch(
            user=member, project=project, name="gone", appliance_version=ready_version, lease_seconds=600
        )
    with django_capture_on_commit_callbacks(execute=True):
        client = browser(member)
        response = client.post(f"/stacks/{stack.pk}/delete/")
    assert response.status_code == 302
    stack.refresh_from_db()
    assert stack.status == Status.DELETED
    page = client.get(response["Location"]).content.decode()
    assert "is being deleted" not in page  # the flash message outlived its state: not shown
    assert "its VMs, disks and network are gone" in page
    assert "data-countdown" not in page  # no lease countdown on a deleted stack
    assert "Delete stack" not in page
    assert "hx-get" not in page  # a deleted stack no longer changes: neither polled nor watched


def test_stack_list_shows_quota_usage(browser, member, project, test_host, ready_version):
    from provisioning.services import launch

    launch.stack_launch(user=member, project=project, name="one", appliance_version=ready_version, lease_seconds=600)
    page = browser(member).get("/stacks/").content.decode()
    assert "<title>Stacks · Stack portal</title>" in page
    assert f'aria-valuemax="{project.max_instances}" aria-valuenow="1"' in page
    assert f"{ready_version.min_ram_mib} of {project.max_memory_mib}" in page


def test_subscribe_form_queues_an_import(browser, member, project):
    from catalog.models import Feed

    response = browser(member).post("/catalog/feeds/", {"url": "https://example.org/feed.xml", "project": project.pk})
    assert response.status_code == 302
    feed = Feed.objects.get()
    assert (feed.project, feed.last_status) == (project, Feed.ImportStatus.QUEUED)


def test_subscribe_form_explains_a_bad_url(browser, member, project):
    from catalog.models import Feed

    page = browser(member).post("/catalog/feeds/", {"url": "ftp://example.org/f", "project": project.pk})
    assert "unsupported URL scheme" in page.content.decode()
    assert not Feed.objects.exists()


def test_member_cannot_subscribe_the_shared_catalog(browser, member):
    from catalog.models import Feed

    page = browser(member).post("/catalog/feeds/", {"url": "https://example.org/feed.xml", "project": ""})
    assert "This field is required" in page.content.decode()
    assert not Feed.objects.exists()


def test_extend_lease_button(browser, member, project, test_host, ready_version):
    from datetime import timedelta

    from provisioning.services import launch

    stack = launch.stack_launch(
        user=member, project=project, name="keep", appliance_version=ready_version, lease_seconds=600
    )
    from django.utils import timezone

    web = browser(member)
    assert f'action="/stacks/{stack.pk}/lease/"' in web.get(f"/stacks/{stack.pk}/").content.decode()
    assert web.post(f"/stacks/{stack.pk}/lease/", {"lease_seconds": 86400}).status_code == 302
    stack.refresh_from_db()
    assert abs(stack.expires_at - (timezone.now() + timedelta(days=1))) < timedelta(seconds=5)  # from now
    assert stack.events.filter(message__startswith="lease renewed until").exists()


def test_operators_see_host_capacity(client, operator, member, project, test_host, ready_version):
    import json
    import re

    from provisioning.services import launch

    launch.stack_launch(user=member, project=project, name="load", appliance_version=ready_version, lease_seconds=600)
    client.force_login(operator)
    page = client.get("/hosts/").content.decode()
    data = json.loads(re.search(r'<script id="capacity-data" type="application/json">(.*?)</script>', page).group(1))
    assert data == [
        {
            "name": "test-host",
            "uri": "test:///default",
            "healthy": True,
            "enabled": True,
            "instances": 1,
            "vcpus_used": ready_version.min_vcpus,
            "vcpus_capacity": test_host.vcpu_capacity,
            "memory_used_mib": ready_version.min_ram_mib,
            "memory_capacity_mib": test_host.memory_capacity_mib,
        }
    ]
    assert "vendor/chartjs/chart.umd.min.js" in page


def test_members_do_not_see_hosts(browser, member):
    response = browser(member).get("/hosts/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")

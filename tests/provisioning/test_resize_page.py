"""The stack page's "Resize a tier" panel and its form."""

from __future__ import annotations

import pytest

from provisioning.models import Instance, Operation, Status
from provisioning.services.launch import stack_launch


@pytest.fixture
def web(member, project, test_host, ready_version, step):
    stack = step(
        lambda: stack_launch(
            user=member, project=project, name="demo", appliance_version=ready_version, lease_seconds=3600
        )
    )
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING
    return stack


def page(client, user, stack):
    client.force_login(user)
    return client.get(f"/stacks/{stack.pk}/").content.decode()


def send(client, user, stack, **fields):
    client.force_login(user)
    return client.post(f"/stacks/{stack.pk}/resize/", {"tier": "web", **fields})


def test_the_panel_shows_sizes_quota_left_and_where_changes_apply(client, member, web):
    html = page(client, member, web)
    assert 'id="resize-heading">Resize a tier' in html
    assert "1 vCPU, 128 MiB, 1 GiB" in html
    assert "up to 16 vCPUs without a restart" in html
    assert "15 vCPUs, 16256 MiB of memory, 199 GiB of disk" in html  # the quota left
    assert "Memory: more applies at the next restart" in html
    assert f'action="/stacks/{web.pk}/resize/"' in html


def test_a_resize_from_the_page_runs_and_says_what_waits_for_a_restart(client, member, web, step):
    answer = step(lambda: send(client, member, web, vcpus="2", memory_mib="256"))
    assert answer.status_code == 302
    assert answer.url == f"/stacks/{web.pk}/"
    operation = Operation.objects.get()
    assert operation.status == Operation.State.SUCCEEDED
    assert operation.created_by == member
    html = page(client, member, web)
    assert "Resizing tier web of demo" in html
    assert "2 vCPUs, 256 MiB" in html
    assert f"{Instance.objects.get().name}: restart to apply" in html


def test_a_refusal_shows_on_the_form(client, member, web, project):
    project.max_vcpus = 1
    project.save()
    answer = send(client, member, web, vcpus="2")
    assert answer.status_code == 400
    html = answer.content.decode()
    assert "The tier was not resized" in html
    assert "may hold 1 vCPUs, 1 are in use and resizing tier &#x27;web&#x27; needs 1" in html
    assert not Operation.objects.exists()
    empty = send(client, member, web).content.decode()
    assert "Give a new number of vCPUs, memory or disk" in empty
    shrink = send(client, member, web, disk_gib="0")
    assert shrink.status_code == 400
    assert 'id="resize-disk_gib_error"' in shrink.content.decode()


def test_a_stopped_stack_says_its_next_start_uses_the_size(client, member, web):
    web.status = Status.STOPPED
    web.save()
    assert "every change goes into its definition" in page(client, member, web)


def test_viewers_see_no_form_and_may_not_post_outsiders_find_nothing(client, viewer, outsider, web):
    html = page(client, viewer, web)
    assert "Members of project alpha can resize its tiers" in html
    assert 'id="resize-submit"' not in html
    assert send(client, viewer, web, vcpus="2").status_code == 403
    assert send(client, outsider, web, vcpus="2").status_code == 404
    assert not Operation.objects.exists()

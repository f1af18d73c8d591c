"""Removing a feed: refused while a live stack uses one of its versions, allowed once they are deleted
(the deleted stacks keep their record, without the version)."""

from __future__ import annotations

import pytest

from catalog.models import ApplianceVersion, Feed
from portal.models import AuditEvent
from provisioning.models import Instance, Status
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch


@pytest.fixture
def own_version(ready_version, project):
    """A downloaded version from a feed of ``project``."""
    Feed.objects.filter(pk=ready_version.appliance.feed_id).update(project=project)
    ready_version.refresh_from_db()
    return ready_version


@pytest.fixture
def live_stack(member, project, test_host, own_version, step):
    stack = step(lambda: stack_launch(user=member, project=project, name="uses-it", appliance_version=own_version))
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    return stack


def test_another_tenant_cannot_remove_our_feed(api, outsider, viewer, own_version):
    feed_id = own_version.appliance.feed_id
    assert api(outsider).delete(f"/api/v1/feeds/{feed_id}/").status_code == 404
    assert api(viewer).delete(f"/api/v1/feeds/{feed_id}/").status_code == 403
    assert Feed.objects.filter(pk=feed_id).exists()


def test_a_feed_a_live_stack_uses_is_kept_and_the_stack_named(api, client, member, live_stack, own_version):
    feed_id = own_version.appliance.feed_id
    response = api(member).delete(f"/api/v1/feeds/{feed_id}/")
    assert response.status_code == 409
    assert response.json()["detail"].endswith("while stacks use its appliances: 'uses-it'; delete those stacks first")
    client.force_login(member)
    page = client.post(f"/catalog/feeds/{feed_id}/remove/", follow=True)
    assert "'uses-it'" in next(str(message) for message in page.context["messages"])
    assert Feed.objects.filter(pk=feed_id).exists()
    assert not AuditEvent.objects.filter(action="feed.unsubscribe").exists()


@pytest.mark.parametrize("status", [Status.SHELVED, Status.STOPPED, Status.ERROR, Status.DELETING])
def test_any_stack_not_yet_deleted_keeps_the_feed(api, member, live_stack, own_version, status):
    Instance.objects.filter(stack=live_stack).update(status=status)
    assert api(member).delete(f"/api/v1/feeds/{own_version.appliance.feed_id}/").status_code == 409


def test_a_feed_goes_once_its_stacks_are_deleted_and_their_record_stays(
    api, client, member, live_stack, own_version, step
):
    feed_id = own_version.appliance.feed_id
    step(lambda: lifecycle.stack_destroy(user=member, stack=live_stack))
    live_stack.refresh_from_db()
    assert live_stack.status == Status.DELETED
    response = api(member).delete(f"/api/v1/feeds/{feed_id}/")
    assert response.status_code == 204
    assert not Feed.objects.filter(pk=feed_id).exists()
    assert not ApplianceVersion.objects.filter(pk=own_version.pk).exists()
    instance = Instance.objects.get(stack=live_stack)
    assert (instance.appliance_version, instance.status) == (None, Status.DELETED)
    # The deleted stack's page and API still answer, without the version.
    shown = api(member).get(f"/api/v1/stacks/{live_stack.pk}/")
    assert shown.status_code == 200
    assert [row["appliance_version"] for row in shown.json()["instances"]] == [None]
    client.force_login(member)
    assert client.get(f"/stacks/{live_stack.pk}/").status_code == 200
    assert client.get(f"/stacks/{live_stack.pk}/status/").status_code == 200

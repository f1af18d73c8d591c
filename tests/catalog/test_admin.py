"""The catalog admin writes only through the catalog services; imported and cached state is read-only."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.test import RequestFactory
from django.urls import reverse

from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed, ImageDelivery
from portal.models import AuditEvent
from tests.factories import ApplianceVersionFactory, FeedFactory

IMPORTED = [Appliance, ApplianceVersion, CachedImage]


def _url(model, view: str, *args) -> str:
    return reverse(admin_urlname(model._meta, view), args=args)


@pytest.fixture
def version(db):
    return ApplianceVersionFactory(
        appliance__title="Web shop",
        version="2.3.1",
        image__status=CachedImage.Status.MISSING,
    )


def _row_of(model, version):
    return {Appliance: version.appliance, ApplianceVersion: version, CachedImage: version.image}[model]


@pytest.mark.parametrize("model", IMPORTED)
def test_imported_state_cannot_be_added_changed_or_deleted(admin_user, admin_client, version, model):
    row = _row_of(model, version)
    assert admin_client.get(_url(model, "add")).status_code == 403
    edit = {"title": "Hacked", "version": "6.6.6", "status": "ready"}
    assert admin_client.post(_url(model, "change", row.pk), edit).status_code == 403
    assert admin_client.post(_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    assert admin_client.post(_url(model, "changelist"), bulk).status_code == 200  # no such action here
    assert admin_client.get(_url(model, "change", row.pk)).status_code == 200  # still readable
    version.refresh_from_db()
    version.appliance.refresh_from_db()
    version.image.refresh_from_db()
    assert (version.appliance.title, version.version, version.image.status) == (
        "Web shop",
        "2.3.1",
        CachedImage.Status.MISSING,
    )
    assert model.objects.filter(pk=row.pk).exists()


def test_versions_shown_on_their_appliance_cannot_be_edited_there(admin_user):
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    [inline] = admin.site._registry[Appliance].get_inline_instances(request)
    assert inline.model is ApplianceVersion
    assert not inline.has_add_permission(request, None)
    assert not inline.has_delete_permission(request, None)
    assert set(inline.get_fields(request)) <= set(inline.get_readonly_fields(request))


def test_adding_a_feed_in_the_admin_subscribes_through_the_service(admin_user, admin_client, project):
    response = admin_client.post(_url(Feed, "add"), {"url": "https://example.org/ops.xml", "project": project.pk})
    feed = Feed.objects.get()
    assert response.status_code == 302
    assert response.url == _url(Feed, "change", feed.pk)
    assert (feed.project, feed.created_by, feed.last_status) == (project, admin_user, Feed.ImportStatus.QUEUED)
    assert AuditEvent.objects.filter(action="feed.subscribe", actor=admin_user).count() == 1


def test_the_admin_shows_the_services_refusal_on_the_form(admin_client):
    FeedFactory(project=None, url="https://example.org/shared.xml")
    response = admin_client.post(_url(Feed, "add"), {"url": "https://example.org/shared.xml", "project": ""})
    assert response.status_code == 200
    assert response.context["form"].errors == {"url": ["this feed is already subscribed"]}
    assert Feed.objects.count() == 1


def test_a_subscription_cannot_be_edited_in_place(admin_client):
    feed = FeedFactory(url="https://example.org/old.xml")
    response = admin_client.post(_url(Feed, "change", feed.pk), {"url": "https://example.org/new.xml"})
    assert response.status_code == 403
    feed.refresh_from_db()
    assert feed.url == "https://example.org/old.xml"


def test_deleting_a_feed_in_the_admin_unsubscribes_through_the_service(admin_user, admin_client, version):
    feed = version.appliance.feed
    assert admin_client.post(_url(Feed, "delete", feed.pk), {"post": "yes"}).status_code == 302
    assert not Feed.objects.exists()
    assert not Appliance.objects.exists()
    assert AuditEvent.objects.filter(action="feed.unsubscribe", actor=admin_user).count() == 1


def test_bulk_delete_unsubscribes_each_feed_through_the_service(admin_user, admin_client):
    feeds = [FeedFactory(), FeedFactory()]
    bulk = {"action": "delete_selected", "_selected_action": [feed.pk for feed in feeds], "post": "yes"}
    assert admin_client.post(_url(Feed, "changelist"), bulk).status_code == 302
    assert not Feed.objects.exists()
    assert AuditEvent.objects.filter(action="feed.unsubscribe", actor=admin_user).count() == 2


def test_a_feed_stacks_were_launched_from_is_kept(admin_client, member, project, test_host, ready_version):
    from provisioning.services.launch import stack_launch

    stack_launch(user=member, project=project, name="uses-it", appliance_version=ready_version)
    feed = ready_version.appliance.feed
    response = admin_client.post(_url(Feed, "delete", feed.pk), {"post": "yes"})
    assert response.status_code == 200  # Django's "protected objects" page, nothing deleted
    assert "<title>Cannot delete feed" in response.content.decode()
    assert Feed.objects.filter(pk=feed.pk).exists()
    assert not AuditEvent.objects.filter(action="feed.unsubscribe").exists()


def test_import_again_action_queues_imports(admin_client, django_capture_on_commit_callbacks):
    feed = FeedFactory()
    with django_capture_on_commit_callbacks() as queued:
        response = admin_client.post(_url(Feed, "changelist"), {"action": "import_now", "_selected_action": [feed.pk]})
    assert response.status_code == 302
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.QUEUED
    assert len(queued) == 1


def test_operators_see_each_versions_download_and_cannot_change_it(admin_client, version):
    delivery = ImageDelivery.objects.create(
        version=version, source="0" * 64, status=ImageDelivery.Status.ERROR, error="HTTP 404 Not Found"
    )
    listing = admin_client.get(_url(ImageDelivery, "changelist"))
    assert listing.status_code == 200
    assert "Web shop" in listing.content.decode()
    assert admin_client.get(_url(ImageDelivery, "change", delivery.pk)).status_code == 200
    assert admin_client.post(_url(ImageDelivery, "change", delivery.pk), {"status": "delivered"}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == ImageDelivery.Status.ERROR

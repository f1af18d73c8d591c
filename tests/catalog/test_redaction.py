"""Credentials in feed and image URLs: one helper redacts them wherever a URL is shown."""

from __future__ import annotations

import pytest
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.urls import reverse

from catalog.models import ApplianceVersion, Feed
from catalog.redaction import redact_url, redact_urls_in
from tests.factories import ApplianceVersionFactory

SECRET = "s3cret-pass"
FEED_URL = f"https://alice:{SECRET}@feeds.example.org/feed.xml"
IMAGE_URL = f"https://bob:{SECRET}@images.example.org/web.qcow2?X-Amz-Signature={SECRET}&v=2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://feeds.example.org/feed.xml", "https://feeds.example.org/feed.xml"),
        ("https://alice:pw@feeds.example.org/feed.xml", "https://***@feeds.example.org/feed.xml"),
        ("https://token@feeds.example.org:8443/f", "https://***@feeds.example.org:8443/f"),
        ("https://a:p@ss@[2001:db8::1]:8443/f", "https://***@[2001:db8::1]:8443/f"),
        ("https://h/f?api_key=k&v=2&Signature=s", "https://h/f?api_key=***&v=2&Signature=***"),
        ("https://h/f?access_token=t#frag", "https://h/f?access_token=***#frag"),
        ("file:///srv/feeds/feed.xml", "file:///srv/feeds/feed.xml"),
        ("not a url", "not a url"),
        ("http://[::1", "http://[::1"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_urls_in_text():
    text = f"cannot fetch {FEED_URL}: refused; see 'ftp://u:{SECRET}@x/y'"
    assert redact_urls_in(text) == "cannot fetch https://***@feeds.example.org/feed.xml: refused; see 'ftp://***@x/y'"


@pytest.fixture
def shared_version(db):
    return ApplianceVersionFactory(appliance__feed__project=None, appliance__feed__url=FEED_URL, image_url=IMAGE_URL)


def test_the_api_shows_feed_and_image_urls_redacted(api, outsider, shared_version):
    feeds = api(outsider).get("/api/v1/feeds/")
    appliances = api(outsider).get("/api/v1/appliances/")
    assert feeds.status_code == appliances.status_code == 200
    for response in (feeds, appliances):
        assert SECRET not in response.content.decode()
    assert feeds.json()["results"][0]["url"] == "https://***@feeds.example.org/feed.xml"
    [version] = appliances.json()["results"][0]["versions"]
    assert version["image_url"] == "https://***@images.example.org/web.qcow2?X-Amz-Signature=***&v=2"


def test_subscribing_through_the_api_answers_with_the_url_redacted(api, member, project):
    response = api(member).post("/api/v1/feeds/", {"url": FEED_URL, "project": project.pk}, format="json")
    assert response.status_code == 202
    assert response.json()["url"] == "https://***@feeds.example.org/feed.xml"
    assert Feed.objects.get().url == FEED_URL


@pytest.mark.parametrize("view", ["changelist", "change"])
@pytest.mark.parametrize("model", [Feed, ApplianceVersion])
def test_the_admin_shows_urls_redacted(admin_client, shared_version, model, view):
    row = shared_version if model is ApplianceVersion else shared_version.appliance.feed
    args = [row.pk] if view == "change" else []
    page = admin_client.get(reverse(admin_urlname(model._meta, view), args=args)).content.decode()
    assert SECRET not in page
    if (model, view) != (ApplianceVersion, "changelist"):  # that list has no URL column
        assert "***@" in page


def test_subscribing_in_the_admin_confirms_with_the_url_redacted(admin_client, project):
    response = admin_client.post(
        reverse("admin:catalog_feed_add"), {"url": FEED_URL, "project": project.pk}, follow=True
    )
    assert "Subscribed to https://***@feeds.example.org/feed.xml" in response.content.decode()
    assert SECRET not in response.content.decode()


def test_the_catalog_page_shows_urls_redacted(client, member, project, shared_version):
    client.force_login(member)
    page = client.get("/catalog/").content.decode()
    assert "feeds.example.org" in page
    assert SECRET not in page
    response = client.post("/catalog/feeds/", {"url": FEED_URL.replace("feed.xml", "b.xml"), "project": project.pk})
    assert response.status_code == 302
    assert SECRET not in client.get("/catalog/").content.decode()  # the confirmation message


def test_audit_lines_written_before_redaction_are_redacted_by_the_migration(db):
    import importlib

    from django.apps import apps

    from portal.models import AuditEvent

    migration = importlib.import_module("catalog.migrations.0003_redact_credentials_in_feed_audit")
    old = AuditEvent.objects.create(
        action="feed.subscribe", target=f"catalog.feed:1 {FEED_URL}", detail={"url": FEED_URL}
    )
    other = AuditEvent.objects.create(action="stack.launch", target="provisioning.stack:1 web", detail={"n": 1})
    migration.redact_feed_audit(apps, None)
    old.refresh_from_db()
    assert old.detail == {"url": "https://***@feeds.example.org/feed.xml"}
    assert old.target == "catalog.feed:1 https://***@feeds.example.org/feed.xml"
    other.refresh_from_db()
    assert (other.target, other.detail) == ("provisioning.stack:1 web", {"n": 1})

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


# Passwords as an attacker (or an unlucky operator) writes them: any character may appear.
ODD_PASSWORDS = [
    "pass word",
    'pa"ss',
    "pa'ss",
    "p<a>ss",
    "pa\tss",
    "p@ss@word",
    "pa/ss",
    "pa?ss",
    "pa#ss",
    "1234/5678",
    "pa%20ss",
    "p:a:ss",
    "x://y",
]


@pytest.mark.parametrize("password", ODD_PASSWORDS)
def test_redact_url_masks_any_password(password):
    url = f"https://alice:{password}@feeds.example.org/feed.xml"
    shown = redact_url(url)
    assert password not in shown
    assert "alice" not in shown
    assert shown == "https://***@feeds.example.org/feed.xml"


@pytest.mark.parametrize("password", ODD_PASSWORDS)
@pytest.mark.parametrize(
    "template",
    [
        "{url}",
        "cannot fetch {url}: HTTP 401 Unauthorized",
        "enclosure URL '{url}' is not http",
        'refused "{url}" and <{url}> twice',
        "first https://mirror.example.org/a.xml then {url} then https://bob:other@x.example.org/b",
    ],
)
def test_redact_urls_in_masks_any_password_anywhere_in_a_message(password, template):
    url = f"https://alice:{password}@feeds.example.org/feed.xml"
    shown = redact_urls_in(template.format(url=url))
    assert password not in shown
    assert "alice" not in shown
    assert "other" not in shown
    assert "***@feeds.example.org/feed.xml" in shown


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # A URL inside another URL's query, percent-encoded once or twice, in a URL or in free text.
        ("https://h.example/go?next=https%3A%2F%2Falice%3As3cret%40feeds.example.org%2Ff", "s3cret"),
        ("next=https%3A%2F%2Falice%3As3cret%2520x%40feeds.example.org%2Ff&x=1", "s3cret"),
        ("https%253A%252F%252Falice%253As3cret%2540feeds.example.org", "s3cret"),
        # Credentials in the query by name, in a message.
        ("cannot fetch https://h.example/f.xml?api_key=s3cret&v=1: HTTP 403", "s3cret"),
    ],
)
def test_redaction_finds_encoded_and_nested_credentials(text, secret):
    assert secret not in redact_urls_in(text)
    if text.startswith("https://h.example"):
        assert secret not in redact_url(text)


@pytest.mark.parametrize(
    "text",
    [
        "https://one:s3cret1@a.example/x, https://two:s3cret2@b.example/y;ftp://three:s3cret3@c.example",
        "error:https://one:s3cret1@a.example/x GET /r/https://two:s3cret2@b.example/y (https://three:s3cret3@c)",
        "https://one:s3cret1@https://two:s3cret2@https://three:s3cret3@c.example/",
    ],
)
def test_every_url_in_a_message_is_redacted(text):
    shown = redact_urls_in(text)
    assert not [secret for secret in ("s3cret1", "s3cret2", "s3cret3") if secret in shown]


def test_a_url_with_an_at_sign_after_its_host_is_refused_at_subscription(member, project):
    from catalog import services
    from portal import errors

    with pytest.raises(errors.Invalid, match="has an at sign after its host name") as caught:
        services.feed_subscribe(user=member, url="https://alice:pa/ss@feeds.example.org/f.xml", project=project)
    assert "pa/ss" not in str(caught.value.detail)
    assert not Feed.objects.exists()


def test_log_lines_are_redacted_whatever_the_password(caplog):
    import logging

    from catalog.redaction import RedactingFormatter

    record = logging.LogRecord(
        "catalog", logging.INFO, __file__, 1, "fetching %s", (f"https://a:{SECRET} x@h/f",), None
    )
    assert SECRET not in RedactingFormatter("%(message)s").format(record)


def test_the_portal_logs_through_the_redacting_formatter(settings):
    assert settings.LOGGING["formatters"]["plain"]["()"] == "catalog.redaction.RedactingFormatter"


def test_a_shared_feeds_error_shows_no_odd_password_to_other_tenants(client, outsider, db):
    from catalog import services
    from tests.factories import FeedFactory

    feed = FeedFactory(project=None, url=f'http://op:{SECRET} "<x>@127.0.0.1:1/feed.xml')
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert SECRET not in feed.last_error
    client.force_login(outsider)
    page = client.get("/catalog/").content.decode()
    assert "cannot fetch http://***@127.0.0.1:1/feed.xml" in page
    assert SECRET not in page
    assert SECRET not in str(client.get("/api/v1/feeds/").content)


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

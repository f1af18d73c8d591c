"""An appliance's role names the tier of its one-click launch: a feed cannot make that launch fail."""

from __future__ import annotations

import pytest

from catalog import services
from catalog.models import Appliance, Feed
from provisioning.models import Stack
from tests.catalog.publishing import publish
from tests.factories import ApplianceVersionFactory, FeedFactory


def test_an_item_whose_role_is_no_tier_name_is_refused_and_named(http_server, db):
    url = publish(http_server)
    feed_xml = http_server.root / "feed.xml"
    feed_xml.write_bytes(feed_xml.read_bytes().replace(b"<vmc:role>web</vmc:role>", b"<vmc:role>Web Server</vmc:role>"))
    feed = FeedFactory(url=url)
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "item 'Demo-Web': role 'web server' is not a tier name" in feed.last_error
    assert not Appliance.objects.exists()


@pytest.fixture
def badly_named(db, project):
    """A version stored before roles were checked, whose role is no tier name."""
    return ApplianceVersionFactory(appliance__feed__project=None, appliance__role="Web Server")


def test_launching_it_through_the_api_is_a_clear_400(api, member, project, badly_named, test_host):
    response = api(member).post(
        "/api/v1/stacks/",
        {"name": "one-click", "project": project.pk, "appliance": badly_named.appliance_id},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "its feed gives it the role 'Web Server', and a tier name must be 1-15 lowercase" in body["detail"]
    assert list(body["fields"]) == ["appliance"]
    assert not Stack.objects.exists()


def test_launching_it_from_the_page_says_why_on_the_form(client, member, project, badly_named, test_host):
    client.force_login(member)
    response = client.post(
        "/stacks/launch/",
        {"name": "one-click", "project": project.pk, "appliance_version": badly_named.pk, "lease_seconds": 3600},
    )
    assert response.status_code == 200
    assert "a tier name must be" in response.content.decode()
    assert not Stack.objects.exists()

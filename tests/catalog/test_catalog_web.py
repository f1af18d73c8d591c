"""The catalog's page and API answer refusals in the portal's one error shape."""

from __future__ import annotations

from catalog.models import Feed
from tests.factories import FeedFactory

URL = "https://example.org/feed.xml"


def test_api_refuses_a_duplicate_subscription_on_the_url_field(api, member, project):
    FeedFactory(project=project, url=URL)
    response = api(member).post("/api/v1/feeds/", {"url": URL, "project": project.pk}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "this feed is already subscribed",
        "fields": {"url": ["this feed is already subscribed"]},
    }


def test_api_tells_a_viewer_their_role_is_too_low(api, viewer, project):
    response = api(viewer).post("/api/v1/feeds/", {"url": URL, "project": project.pk}, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "detail": "this needs the member role in project alpha: ask one of its owners",
    }
    assert not Feed.objects.exists()


def test_api_keeps_the_shared_catalog_to_operators(api, member, operator):
    refused = api(member).post("/api/v1/feeds/", {"url": URL}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    accepted = api(operator).post("/api/v1/feeds/", {"url": URL}, format="json")
    assert accepted.status_code == 202
    assert (accepted.json()["project"], accepted.json()["last_status"]) == (None, Feed.ImportStatus.QUEUED)


def test_page_shows_a_duplicate_subscription_next_to_the_url(client, member, project):
    FeedFactory(project=project, url=URL, title="Already here")
    client.force_login(member)
    response = client.post("/catalog/feeds/", {"url": URL, "project": project.pk})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors == {"url": ["this feed is already subscribed"]}
    assert Feed.objects.count() == 1

"""The catalog as a tenant browses it: cards, filters, details, the launch dialog's quota preview,
and feeds they can retry or remove — and what another project's member cannot do to them."""

from __future__ import annotations

import pytest

from catalog.feed_problems import explain_feed_error
from catalog.models import Appliance, Feed
from portal.models import AuditEvent
from tests.factories import ApplianceFactory, ApplianceVersionFactory, FeedFactory


@pytest.fixture
def shelves(project, other_project):
    """A shared web server, a shared database and a private appliance of the other project."""
    shared = FeedFactory(project=None, title="Shared feed")
    web = ApplianceVersionFactory(
        appliance__feed=shared, appliance__title="Apache web", appliance__role="web", min_ram_mib=256
    )
    db = ApplianceVersionFactory(
        appliance__feed=shared,
        appliance__title="Postgres",
        appliance__role="db",
        appliance__description="a relational database",
        min_ram_mib=4096,
        min_vcpus=2,
        declared_virtual_bytes=3 * 1024**3 - 1,
    )
    secret = ApplianceVersionFactory(
        appliance__feed=FeedFactory(project=other_project, title="Beta's feed"), appliance__title="Beta secret"
    )
    return web, db, secret


def _titles(response) -> list[str]:
    return [appliance.title for appliance in response.context["appliances"]]


def test_the_catalog_shows_visible_appliances_as_cards_and_not_another_projects(client, member, shelves):
    client.force_login(member)
    response = client.get("/catalog/")
    assert _titles(response) == ["Apache web", "Postgres"]
    assert b"Beta secret" not in response.content
    assert response.content.count(b'class="card h-100"') == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=relational", ["Postgres"]),
        ("q=APACHE", ["Apache web"]),
        ("role=db", ["Postgres"]),
        ("size=small", ["Apache web"]),
        ("size=large", ["Postgres"]),
        ("q=nothing-like-it", []),
    ],
)
def test_search_and_filters_narrow_the_cards(client, member, shelves, query, expected):
    client.force_login(member)
    response = client.get(f"/catalog/?{query}")
    assert _titles(response) == expected


def test_filtering_by_another_projects_feed_is_not_possible(client, member, shelves):
    _web, _db, secret = shelves
    client.force_login(member)
    response = client.get(f"/catalog/?feed={secret.appliance.feed_id}")
    # Not a choice the reader has: the form is invalid and the catalog shows what it always shows.
    assert "feed" in response.context["filters"].errors
    assert "Beta secret" not in _titles(response)


def test_the_launch_dialog_shows_the_cost_and_the_projects_quota(client, member, project, shelves):
    _web, db, _secret = shelves
    client.force_login(member)
    content = client.get("/catalog/").content.decode()
    assert f'data-version="{db.pk}"' in content
    assert 'data-launch-url="/stacks/launch/"' in content
    # The dialog's form comes from the server: 2 vCPU, 4096 MiB, and the 3 GiB the image needs (a
    # byte under 3 GiB rounds up), against the project's quota.
    fragment = client.get("/stacks/launch/", {"version": db.pk}, HTTP_X_LAUNCH_DIALOG="modal").content.decode()
    assert "What this launch takes: 2 vCPU and 4096 MiB of memory plus 3 GiB of disk" in fragment
    assert f'<td class="text-end">{project.max_vcpus}</td>' in fragment


def test_a_viewer_gets_no_launch_dialog(client, viewer, shelves):
    client.force_login(viewer)
    response = client.get("/catalog/")
    assert response.context["launch_projects"] == []
    assert b'id="launch-dialog"' not in response.content


def test_appliance_details_list_versions_with_image_status(client, member, shelves):
    web, _db, _secret = shelves
    ApplianceVersionFactory(appliance=web.appliance, version="2.0.0")
    client.force_login(member)
    response = client.get(f"/catalog/appliances/{web.appliance_id}/")
    assert response.status_code == 200
    assert {version.version for version in response.context["versions"]} == {"2.0.0", "1.0.0"}
    assert b"Not downloaded" in response.content


def test_another_projects_appliance_details_are_not_found(client, member, shelves):
    _web, _db, secret = shelves
    client.force_login(member)
    assert client.get(f"/catalog/appliances/{secret.appliance_id}/").status_code == 404


def test_a_failed_feed_speaks_to_the_tenant_and_can_be_retried(
    client, member, project, django_capture_on_commit_callbacks
):
    feed = FeedFactory(
        project=project,
        last_status=Feed.ImportStatus.ERROR,
        last_error="refusing to fetch from 'feeds.local': it resolves to the non-public address 10.0.0.5 "
        "(an operator can allow it in PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS)",
    )
    client.force_login(member)
    page = client.get("/catalog/").content.decode()
    assert "The portal is not allowed to read feeds from that address" in page
    assert "PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS" not in page
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/catalog/feeds/{feed.pk}/retry/", follow=True)
    assert len(queued) == 1
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.QUEUED
    assert "Fetching" in next(str(message) for message in response.context["messages"])
    assert AuditEvent.objects.filter(action="feed.refresh").count() == 1


def test_a_feed_can_be_removed_with_its_appliances(client, member, project):
    feed = FeedFactory(project=project)
    ApplianceFactory(feed=feed)
    client.force_login(member)
    response = client.post(f"/catalog/feeds/{feed.pk}/remove/", follow=True)
    assert response.status_code == 200
    assert not Feed.objects.filter(pk=feed.pk).exists()
    assert not Appliance.objects.filter(feed_id=feed.pk).exists()


def test_another_projects_feed_cannot_be_retried_or_removed(client, outsider, project):
    feed = FeedFactory(project=project, last_status=Feed.ImportStatus.ERROR, last_error="HTTP 500")
    client.force_login(outsider)
    assert client.post(f"/catalog/feeds/{feed.pk}/retry/").status_code == 404
    assert client.post(f"/catalog/feeds/{feed.pk}/remove/").status_code == 404
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR


def test_a_viewer_cannot_remove_a_feed_and_is_told_why(client, viewer, project):
    feed = FeedFactory(project=project)
    client.force_login(viewer)
    response = client.post(f"/catalog/feeds/{feed.pk}/remove/", follow=True)
    assert Feed.objects.filter(pk=feed.pk).exists()
    assert [str(message) for message in response.context["messages"]] == [
        "this needs the member role in project alpha: ask one of its owners"
    ]


def test_a_member_cannot_remove_a_shared_feed(client, member):
    feed = FeedFactory(project=None)
    client.force_login(member)
    client.post(f"/catalog/feeds/{feed.pk}/remove/")
    assert Feed.objects.filter(pk=feed.pk).exists()


def test_retry_and_remove_need_post(client, member, project):
    feed = FeedFactory(project=project)
    client.force_login(member)
    assert client.get(f"/catalog/feeds/{feed.pk}/remove/").status_code == 405
    assert Feed.objects.filter(pk=feed.pk).exists()


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        ("cannot resolve host 'nowhere.example': Name or service not known", "server name could not be found"),
        ("https://x.example/feed: HTTP 404 Not Found", "no feed at that URL (HTTP 404)"),
        ("https://x.example/feed: HTTP 503 Service Unavailable", "answered with an error (HTTP 503)"),
        ("https://x.example/feed: took longer than 60 s, stopped", "too slow"),
        ("https://x.example/feed: more than 5 redirects", "redirected"),
        ("https://x.example/feed: more than 1048576 bytes, stopped", "larger than the portal accepts"),
        ("not an RSS feed (a VMcast is RSS 2.0 with one <item> per appliance version)", "not a VMcast feed"),
        ("item 'web 1.0': missing sha256", "Some entries of the feed"),
        ("internal error: KeyError", "fault in the portal"),
        ("something nobody foresaw", "could not be imported"),
    ],
)
def test_feed_errors_are_explained_in_the_subscribers_terms(error, summary):
    problem = explain_feed_error(error)
    assert summary in problem.summary
    assert problem.detail == error


def test_operator_hints_are_left_out_of_the_detail():
    problem = explain_feed_error(
        "file URL 'file:///etc/x' is outside the folders feeds may be read from (PORTAL_FETCH_FILE_ROOTS)"
    )
    assert problem.detail == "file URL 'file:///etc/x' is outside the folders feeds may be read from"


@pytest.fixture
def crowded(db):
    """A shared feed of 60 appliances, each with its own tier name, as one big feed makes."""
    shared = FeedFactory(project=None, title="Big shared feed")
    return [
        ApplianceVersionFactory(
            appliance__feed=shared, appliance__title=f"Appliance {number:02}", appliance__role=f"tier{number:02}"
        )
        for number in range(60)
    ]


def test_the_catalog_shows_appliances_a_page_at_a_time(client, member, crowded):
    client.force_login(member)
    first = client.get("/catalog/")
    assert first.content.count(b'class="card h-100"') == 12
    assert _titles(first)[0] == "Appliance 00"
    assert "60 appliances found" in first.content.decode()
    last = client.get("/catalog/?page=5")
    assert _titles(last) == [f"Appliance {number}" for number in range(48, 60)]
    # Whatever the URL says, a page is shown: past the end the last, not a number the first.
    assert _titles(client.get("/catalog/?page=999")) == _titles(last)
    assert _titles(client.get("/catalog/?page=x")) == _titles(first)


def test_page_links_keep_the_filters(client, member, crowded):
    client.force_login(member)
    response = client.get("/catalog/?q=Appliance&size=small")
    assert 'href="?q=Appliance&amp;size=small&amp;page=2"' in response.content.decode()


def test_the_catalog_page_costs_the_same_queries_and_size_for_a_big_catalog(client, member, crowded):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(member)

    def measure(**filters) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/catalog/", filters)
        return len(captured.captured_queries), len(response.content)

    queries_for_10, size_for_10 = measure(q="Appliance 0")  # "Appliance 00" to "Appliance 09": 10 cards
    queries_for_60, size_for_60 = measure()
    assert queries_for_60 == queries_for_10
    assert size_for_60 < 2.5 * size_for_10  # 12 cards, not 60


def test_the_tier_filter_offers_a_bounded_list_yet_filters_by_any_tier(client, member, crowded):
    from catalog.browse import MAX_CHOICES

    client.force_login(member)
    response = client.get("/catalog/")
    choices = response.context["filters"].fields["role"].widget.choices
    assert len(choices) == MAX_CHOICES + 1  # and "Any tier"
    response = client.get("/catalog/?role=tier59")
    assert _titles(response) == ["Appliance 59"]


def test_the_feed_filter_offers_a_bounded_list_yet_filters_by_any_visible_feed(client, member, project, db):
    from catalog.browse import MAX_CHOICES

    versions = [ApplianceVersionFactory(appliance__feed__project=None) for _ in range(MAX_CHOICES + 5)]
    client.force_login(member)
    response = client.get("/catalog/")
    assert len(response.context["filters"].fields["feed"].widget.choices) == MAX_CHOICES + 1
    last = versions[-1].appliance
    response = client.get(f"/catalog/?feed={last.feed_id}")
    assert _titles(response) == [last.title]
    assert f'<option value="{last.feed_id}" selected>' in response.content.decode()


def test_the_feed_list_is_shown_a_page_at_a_time_with_links_to_each_feeds_appliances(client, member, project):
    feeds = [FeedFactory(project=project, url=f"https://feeds.example.org/{number:02}.xml") for number in range(25)]
    client.force_login(member)
    first = client.get("/catalog/")
    assert len(first.context["feeds"]) == 20
    second = client.get("/catalog/?feeds_page=2&page=1")
    assert [feed.url for feed in second.context["feeds"]] == [feed.url for feed in feeds[20:]]
    assert f'href="/catalog/?feed={feeds[20].pk}"' in second.content.decode()


def test_an_appliances_versions_are_shown_a_page_at_a_time(client, member, db):
    from datetime import UTC, datetime, timedelta

    appliance = ApplianceFactory(feed=FeedFactory(project=None))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for number in range(30):
        ApplianceVersionFactory(appliance=appliance, version=f"1.{number}", published_at=start + timedelta(days=number))
    client.force_login(member)
    first = client.get(f"/catalog/appliances/{appliance.pk}/")
    assert [version.version for version in first.context["versions"]][:2] == ["1.29", "1.28"]
    assert len(first.context["versions"]) == 25
    second = client.get(f"/catalog/appliances/{appliance.pk}/?page=2")
    assert [version.version for version in second.context["versions"]] == [f"1.{n}" for n in range(4, -1, -1)]


@pytest.mark.parametrize("query", ["feed=" + "9" * 5000, "role=" + "x" * 5000, "page=" + "9" * 5000, "feeds_page=-1"])
def test_hostile_filter_and_page_values_still_show_the_catalog(client, member, crowded, query):
    client.force_login(member)
    response = client.get(f"/catalog/?{query}")
    assert response.status_code == 200
    assert response.content.count(b'class="card h-100"') == 12

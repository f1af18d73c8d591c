"""Refreshing feeds: conditional fetches (an unchanged feed costs one 304 and stores nothing), the
refresh API and button, and a project's own catalog, which nothing fetches."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from catalog import services, vmcast
from catalog.fetch import FetchError, FetchPolicy, Validators, fetch_if_changed
from catalog.models import ApplianceVersion, Feed
from catalog.tasks import import_feed, refresh_feeds
from portal.models import AuditEvent
from tests.factories import FeedFactory

ETAG = '"v1"'
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
LOOPBACK = FetchPolicy(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout_seconds=5)


def feed_bytes(*versions: str, appliance: str = "demo-web") -> bytes:
    items = [
        vmcast.FeedItem(
            appliance=appliance,
            title="Demo web",
            description="",
            version=version,
            url=f"https://images.example.org/{appliance}-{version}.qcow2",
            size_bytes=1024,
            sha256=hashlib.sha256(f"{appliance}-{version}".encode()).hexdigest(),
            disk_format="qcow2",
        )
        for version in versions
    ]
    return vmcast.render_feed(title="Test feed", link="https://example.org", description="", items=items)


def conditional(body: bytes, *, etag: str = ETAG, last_modified: str = LAST_MODIFIED):
    """A route answering 304 to the validators it gave, and the whole body to anything else."""

    def answer(headers: dict[str, str]):
        if etag and headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        given = {"ETag": etag} if etag else {}
        return 200, {**given, "Last-Modified": last_modified}, body

    return answer


@pytest.fixture
def served(http_server, project):
    """A project feed on the loopback server, answering conditionally."""
    http_server.routes["/feed.xml"] = conditional(feed_bytes("1.0"))
    return FeedFactory(project=project, url=f"{http_server.base_url}/feed.xml")


# The fetcher's side: validators sent, 304 understood, nothing else relaxed.


def test_a_304_nobody_asked_for_is_an_error(http_server):
    http_server.routes["/feed.xml"] = (304, {}, b"")
    with pytest.raises(FetchError, match="HTTP 304"):
        fetch_if_changed(f"{http_server.base_url}/feed.xml", policy=LOOPBACK, max_bytes=1000)


def test_a_conditional_fetch_still_refuses_a_redirect_to_a_host_not_allowed(http_server):
    port = http_server.base_url.rsplit(":", 1)[1]
    http_server.routes["/r"] = (302, {"Location": f"http://localhost:{port}/feed.xml"}, b"")
    with pytest.raises(FetchError, match="refusing to fetch from 'localhost'"):
        fetch_if_changed(f"{http_server.base_url}/r", policy=LOOPBACK, max_bytes=1000, validators=Validators(ETAG))


def test_a_conditional_fetch_keeps_the_size_cap(http_server):
    http_server.routes["/big"] = (200, {"ETag": ETAG}, b"x" * 5000)
    with pytest.raises(FetchError, match="over the limit"):
        fetch_if_changed(f"{http_server.base_url}/big", policy=LOOPBACK, max_bytes=1000, validators=Validators(ETAG))


def test_validators_go_with_each_redirect_to_where_the_answer_is(http_server):
    http_server.routes["/a"] = (301, {"Location": "/b"}, b"")
    http_server.routes["/b"] = conditional(b"<rss/>")
    url = f"{http_server.base_url}/a"
    first = fetch_if_changed(url, policy=LOOPBACK, max_bytes=1000)
    assert (first.data, first.validators) == (b"<rss/>", Validators(ETAG, LAST_MODIFIED))
    again = fetch_if_changed(url, policy=LOOPBACK, max_bytes=1000, validators=first.validators)
    assert again.unchanged
    assert [(seen.path, seen.status) for seen in http_server.requests] == [
        ("/a", 301),
        ("/b", 200),
        ("/a", 301),
        ("/b", 304),
    ]


def test_validators_a_column_cannot_hold_are_not_kept(http_server):
    http_server.routes["/feed.xml"] = (200, {"ETag": '"' + "e" * 400 + '"', "Last-Modified": LAST_MODIFIED}, b"<rss/>")
    answer = fetch_if_changed(f"{http_server.base_url}/feed.xml", policy=LOOPBACK, max_bytes=1000)
    assert answer.validators == Validators(etag="", last_modified=LAST_MODIFIED)


def test_a_file_has_no_validators(tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss/>")
    policy = FetchPolicy(file_roots=(tmp_path,))
    answer = fetch_if_changed(feed.as_uri(), policy=policy, max_bytes=1000, validators=Validators(ETAG, LAST_MODIFIED))
    assert (answer.data, answer.validators) == (b"<rss/>", Validators())


# The import's side.


def test_a_refused_feed_keeps_no_validators_and_is_fetched_whole_again(http_server, served):
    http_server.routes["/feed.xml"] = conditional(b"<<< not a feed")
    services.feed_import(feed=served)
    served.refresh_from_db()
    assert served.last_status == Feed.ImportStatus.ERROR
    assert (served.etag, served.last_modified, served.format) == ("", "", "")
    services.feed_import(feed=served)
    assert [seen.status for seen in http_server.requests] == [200, 200]
    assert "If-None-Match" not in http_server.requests[1].headers


def test_an_unchanged_feed_is_asked_with_its_validators_and_answered_304(http_server, served):
    services.feed_import(feed=served)
    served.refresh_from_db()
    assert (served.last_status, served.format) == (Feed.ImportStatus.OK, Feed.Format.VMCAST)
    assert (served.etag, served.last_modified) == (ETAG, LAST_MODIFIED)
    earlier = timezone.now() - timedelta(hours=1)
    Feed.objects.filter(pk=served.pk).update(last_import_at=earlier)
    served.refresh_from_db()

    message = import_feed(served.pk)

    asked = http_server.requests[-1]
    assert asked.headers["If-None-Match"] == ETAG
    assert asked.headers["If-Modified-Since"] == LAST_MODIFIED
    assert asked.status == 304
    served.refresh_from_db()
    assert (served.last_status, served.last_error) == (Feed.ImportStatus.OK, "")
    assert served.last_import_at > earlier
    assert message == f"ok: {services.UNCHANGED}"


def test_an_unchanged_feed_stores_nothing(http_server, served):
    services.feed_import(feed=served)
    versions_before = list(ApplianceVersion.objects.values())
    with CaptureQueriesContext(connection) as queries:
        services.feed_import(feed=served)
    assert http_server.requests[-1].status == 304
    touched = {table for query in queries for table in re.findall(r'"(catalog_\w+)"', query["sql"])}
    assert touched == {"catalog_feed"}, [query["sql"] for query in queries]
    assert list(ApplianceVersion.objects.values()) == versions_before


def test_a_changed_feed_is_imported_and_its_new_validators_kept(http_server, served):
    services.feed_import(feed=served)
    http_server.routes["/feed.xml"] = conditional(feed_bytes("1.0", "2.0"), etag='"v2"')
    services.feed_import(feed=served)
    served.refresh_from_db()
    assert http_server.requests[-1].status == 200
    assert (served.etag, served.last_item_count) == ('"v2"', 2)
    assert sorted(ApplianceVersion.objects.values_list("version", flat=True)) == ["1.0", "2.0"]


def test_an_answer_without_validators_clears_the_old_ones(http_server, served):
    services.feed_import(feed=served)
    http_server.routes["/feed.xml"] = (200, {}, feed_bytes("1.0", "2.0"))
    services.feed_import(feed=served)
    served.refresh_from_db()
    assert (served.etag, served.last_modified) == ("", "")


# A project's own catalog is never fetched.


@pytest.fixture
def own_catalog(project):
    return FeedFactory(project=project, url="", format=Feed.Format.LOCAL, title="alpha: own images", last_status="ok")


def test_a_projects_own_catalog_cannot_be_refreshed(api, member, own_catalog):
    response = api(member).post(f"/api/v1/feeds/{own_catalog.pk}/refresh/")
    assert response.status_code == 409
    assert "is the project's own catalog" in response.json()["detail"]
    own_catalog.refresh_from_db()
    assert own_catalog.last_status == Feed.ImportStatus.OK
    assert not AuditEvent.objects.filter(action="feed.refresh").exists()


def test_the_hourly_refresh_skips_a_projects_own_catalog(http_server, served, own_catalog, step):
    assert step(refresh_feeds) == 1
    own_catalog.refresh_from_db()
    assert own_catalog.last_status == Feed.ImportStatus.OK
    served.refresh_from_db()
    assert served.last_status == Feed.ImportStatus.OK
    assert len(http_server.requests) == 1


def test_importing_a_projects_own_catalog_does_nothing(own_catalog):
    services.feed_import(feed=own_catalog)
    own_catalog.refresh_from_db()
    assert (own_catalog.last_status, own_catalog.last_import_at) == (Feed.ImportStatus.OK, None)


def test_the_page_offers_no_refresh_of_a_projects_own_catalog(client, member, own_catalog):
    client.force_login(member)
    page = client.get("/catalog/").content.decode()
    assert "The project&#x27;s own images" in page
    assert f'action="/catalog/feeds/{own_catalog.pk}/retry/"' not in page
    response = client.post(f"/catalog/feeds/{own_catalog.pk}/retry/", follow=True)
    assert "is the project's own catalog" in next(str(message) for message in response.context["messages"])


# The refresh API and button.


def test_refresh_api_queues_an_import_and_answers_the_feed(api, member, served, step):
    response = step(lambda: api(member).post(f"/api/v1/feeds/{served.pk}/refresh/"))
    assert response.status_code == 202
    body = response.json()
    assert (body["id"], body["last_status"]) == (served.pk, Feed.ImportStatus.QUEUED)
    assert "format" in body
    assert not {"etag", "last_modified"} & set(body)
    served.refresh_from_db()
    assert (served.last_status, served.format) == (Feed.ImportStatus.OK, Feed.Format.VMCAST)  # the task ran
    assert AuditEvent.objects.filter(action="feed.refresh", actor=member).count() == 1


def test_another_tenant_naming_our_feed_is_told_it_does_not_exist(
    api, outsider, served, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = api(outsider).post(f"/api/v1/feeds/{served.pk}/refresh/")
    assert response.status_code == 404
    assert queued == []
    served.refresh_from_db()
    assert served.last_status == Feed.ImportStatus.NEVER


def test_a_viewer_may_not_refresh(api, viewer, served):
    response = api(viewer).post(f"/api/v1/feeds/{served.pk}/refresh/")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_only_operators_refresh_the_shared_catalog(
    api, member, operator, http_server, django_capture_on_commit_callbacks
):
    shared = FeedFactory(project=None, url=f"{http_server.base_url}/feed.xml")
    assert api(member).post(f"/api/v1/feeds/{shared.pk}/refresh/").status_code == 403
    with django_capture_on_commit_callbacks() as queued:
        assert api(operator).post(f"/api/v1/feeds/{shared.pk}/refresh/").status_code == 202
    assert len(queued) == 1


def test_refresh_is_refused_past_the_projects_import_limit(api, member, project, served, settings):
    settings.IMPORTS_PER_PROJECT = 1
    FeedFactory(project=project, last_status=Feed.ImportStatus.IMPORTING, status_changed_at=timezone.now())
    response = api(member).post(f"/api/v1/feeds/{served.pk}/refresh/")
    assert response.status_code == 409
    assert "already has 1 feed import queued or running (at most 1 at once)" in response.json()["detail"]
    served.refresh_from_db()
    assert served.last_status == Feed.ImportStatus.NEVER


def test_a_feed_being_imported_is_not_queued_twice(api, member, served):
    Feed.objects.filter(pk=served.pk).update(last_status=Feed.ImportStatus.QUEUED)
    response = api(member).post(f"/api/v1/feeds/{served.pk}/refresh/")
    assert response.status_code == 409
    assert "is being imported already" in response.json()["detail"]


def test_the_page_shows_each_feeds_format_and_a_refresh_button(client, member, http_server, served, step):
    services.feed_import(feed=served)
    client.force_login(member)
    page = client.get("/catalog/").content.decode()
    assert ">VMcast</span>" in page
    assert re.search(rf'action="/catalog/feeds/{served.pk}/retry/">.*?>Refresh<', page, re.S), page[
        page.index('id="feeds"') :
    ]
    response = step(lambda: client.post(f"/catalog/feeds/{served.pk}/retry/", follow=True))
    assert "Fetching" in next(str(message) for message in response.context["messages"])
    assert [seen.status for seen in http_server.requests] == [200, 304]  # the button's import was conditional


def test_the_page_links_to_the_upload_page_when_there_is_one(client, member):
    client.force_login(member)
    page = client.get("/catalog/").content.decode()
    try:
        upload = reverse("upload-new")
    except NoReverseMatch:
        assert "Upload an image" not in page
    else:
        assert f'href="{upload}">Upload an image</a>' in page


def test_the_buttons_show_to_a_member_whatever_the_ids_of_their_membership(db, client, http_server):
    # Memberships and projects are numbered apart: ids that happen to agree must not be what shows the buttons.
    from tests.factories import MembershipFactory, ProjectFactory

    for number in range(3):
        MembershipFactory(project=ProjectFactory(name=f"earlier-{number}"))
    later = ProjectFactory(name="later")
    MembershipFactory.create_batch(2, project=later, role="viewer")
    member = MembershipFactory(project=later, role="member").user
    feed = FeedFactory(project=later, url=f"{http_server.base_url}/feed.xml", last_status=Feed.ImportStatus.ERROR)
    client.force_login(member)
    page = client.get("/catalog/").content.decode()
    assert f'action="/catalog/feeds/{feed.pk}/retry/"' in page
    assert f'action="/catalog/feeds/{feed.pk}/remove/"' in page

"""How much of the catalog a feed can take: items per feed, feeds per project, and how long an import
holds the database (short transactions, a few statements each, whatever the feed's size)."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import services, vmcast
from catalog.feed_problems import explain_feed_error
from catalog.models import Appliance, ApplianceVersion, Feed
from portal import errors
from tests.factories import FeedFactory


def generated_feed(count: int, *, prefix: str = "app", start: int = 0, **overrides) -> bytes:
    """A VMcast of ``count`` appliances, one version each, as a publisher could serve it."""

    def item(number: int) -> vmcast.FeedItem:
        values = {
            "appliance": f"{prefix}-{number}",
            "title": f"Appliance {number}",
            "description": "generated",
            "version": "1.0",
            "url": f"http://127.0.0.1:1/{number}.qcow2",
            "size_bytes": 1024,
            "sha256": hashlib.sha256(f"{prefix}-{number}".encode()).hexdigest(),
            "disk_format": "qcow2",
        }
        return vmcast.FeedItem(**{**values, **overrides})

    items = [item(number) for number in range(start, start + count)]
    return vmcast.render_feed(title="Big feed", link="http://127.0.0.1", description="", items=items)


@pytest.fixture
def serve(http_server, db):
    """``serve(feed_bytes)`` puts a feed on the loopback server and returns a subscription to it."""
    feed = None

    def put(data: bytes) -> Feed:
        nonlocal feed
        (http_server.root / "feed.xml").write_bytes(data)
        feed = feed or FeedFactory(url=f"{http_server.base_url}/feed.xml")
        return feed

    return put


def _import(feed: Feed) -> Feed:
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    return feed


def test_a_feed_over_the_item_limit_is_refused_whole_and_says_why(serve, settings):
    settings.FEED_MAX_ITEMS = 40
    feed = _import(serve(generated_feed(41)))
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "the feed has 41 items, more than the 40 the portal reads from one feed" in feed.last_error
    assert not Appliance.objects.exists()
    assert "more appliance versions than the portal accepts" in explain_feed_error(feed.last_error).summary


def test_a_feed_at_the_limit_is_imported(serve, settings):
    settings.FEED_MAX_ITEMS = 40
    feed = _import(serve(generated_feed(40)))
    assert (feed.last_status, feed.last_item_count) == (Feed.ImportStatus.OK, 40)
    assert ApplianceVersion.objects.count() == 40


def _transactions(queries: list[dict]) -> tuple[list[list[str]], list[str]]:
    """The statements run inside each (nested) transaction, and those run outside any."""
    inside: list[list[str]] = []
    outside: list[str] = []
    depth = 0
    for query in queries:
        sql = query["sql"].strip().upper()
        if sql.startswith("SAVEPOINT"):
            depth += 1
            if depth == 1:
                inside.append([])
        elif sql.startswith(("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            depth -= 1
        elif depth:
            inside[-1].append(sql)
        else:
            outside.append(sql)
    return inside, outside


def test_a_big_feed_is_written_in_short_transactions_of_few_statements(serve, settings):
    settings.FEED_MAX_ITEMS = 1000
    settings.FEED_IMPORT_BATCH_ITEMS = 100
    feed = serve(generated_feed(1000))
    with CaptureQueriesContext(connection) as captured:
        _import(feed)
    assert (feed.last_status, feed.last_item_count) == (Feed.ImportStatus.OK, 1000), feed.last_error
    assert (Appliance.objects.count(), ApplianceVersion.objects.count()) == (1000, 1000)
    transactions, outside = _transactions(captured.captured_queries)
    # Ten batches of 100 items: each one transaction of a handful of statements (upserts, not a query
    # per item), and no appliance or version written outside them.
    assert len(transactions) == 10
    assert max(len(statements) for statements in transactions) <= 6
    writes = ("INSERT", "UPDATE", "DELETE")
    assert not [sql for sql in outside if sql.startswith(writes) and "CATALOG_APPLIANCE" in sql]
    assert len(captured.captured_queries) < 100


def test_importing_it_again_updates_in_place_with_as_few_statements(serve, settings):
    settings.FEED_MAX_ITEMS = 300
    settings.FEED_IMPORT_BATCH_ITEMS = 100
    feed = _import(serve(generated_feed(300)))
    serve(generated_feed(300, min_ram_mib=512, role="db"))
    with CaptureQueriesContext(connection) as captured:
        _import(feed)
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    assert len(_transactions(captured.captured_queries)[0]) == 3
    assert set(ApplianceVersion.objects.values_list("min_ram_mib", flat=True)) == {512}
    assert set(Appliance.objects.values_list("role", flat=True)) == {"db"}
    assert Appliance.objects.count() == 300


def test_a_problem_in_a_late_batch_refuses_the_feed_before_any_batch_is_written(serve, settings):
    settings.FEED_IMPORT_BATCH_ITEMS = 10
    feed = _import(serve(generated_feed(50)))
    # The same feed, every title changed, and the last item's image swapped behind its version.
    changed = generated_feed(50, description="new").replace(b"<title>Appliance", b"<title>Renamed")
    last = hashlib.sha256(b"app-49").hexdigest().encode()
    serve(changed.replace(last, b"f" * 64))
    _import(feed)
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "appliance 'app-49' version '1.0' changed its image (sha256)" in feed.last_error
    assert not Appliance.objects.filter(title__startswith="Renamed").exists()


def test_rotating_items_does_not_grow_a_feed_past_the_limit(serve, settings):
    settings.FEED_MAX_ITEMS = 20
    feed = _import(serve(generated_feed(20)))
    for hour in range(1, 4):  # a publisher serving 20 new appliances every hour
        _import(serve(generated_feed(20, start=20 * hour)))
        assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    identifiers = set(Appliance.objects.values_list("identifier", flat=True))
    assert identifiers == {f"app-{number}" for number in range(60, 80)}  # the oldest unlisted went
    assert ApplianceVersion.objects.count() == 20


def test_versions_a_feed_stops_listing_stay_while_under_the_limit(serve, settings):
    settings.FEED_MAX_ITEMS = 20
    _import(serve(generated_feed(5)))
    _import(serve(generated_feed(5, start=5)))
    assert ApplianceVersion.objects.count() == 10


def test_many_bad_items_make_one_bounded_problem(serve, settings):
    settings.FEED_MAX_ITEMS = 400
    long_title = "A" * 5000
    data = generated_feed(300, disk_format="iso").replace(b"<title>Appliance", f"<title>{long_title}".encode())
    feed = _import(serve(data))
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert feed.last_error.count("disk format 'iso'") == 10
    assert feed.last_error.endswith("; and 290 more problems")
    assert len(feed.last_error) < 2000


@pytest.fixture
def limit_two(settings):
    settings.FEEDS_PER_PROJECT = 2


def test_a_project_may_subscribe_only_so_many_feeds(member, project, outsider, other_project, limit_two):
    services.feed_subscribe(user=member, url="https://feeds.example.org/0.xml", project=project)
    FeedFactory(project=project, last_status=Feed.ImportStatus.OK)
    with pytest.raises(errors.QuotaExceeded, match="project 'alpha' already has 2 feeds, the most it may have"):
        services.feed_subscribe(user=member, url="https://feeds.example.org/2.xml", project=project)
    assert Feed.objects.filter(project=project).count() == 2
    # Another project's count is its own.
    services.feed_subscribe(user=outsider, url="https://feeds.example.org/2.xml", project=other_project)


def test_the_shared_catalog_has_the_same_limit(operator, limit_two):
    for number in range(2):
        services.feed_subscribe(user=operator, url=f"https://feeds.example.org/{number}.xml", project=None)
    with pytest.raises(errors.QuotaExceeded, match="the shared catalog already has 2 feeds"):
        services.feed_subscribe(user=operator, url="https://feeds.example.org/2.xml", project=None)


def test_the_api_answers_the_feed_limit_as_a_quota(api, member, project, limit_two):
    FeedFactory.create_batch(2, project=project)
    response = api(member).post("/api/v1/feeds/", {"url": "https://example.org/f.xml", "project": project.pk})
    assert response.status_code == 403
    assert response.json()["code"] == "quota_exceeded"
    assert Feed.objects.filter(project=project).count() == 2


def test_the_page_shows_the_feed_limit_on_the_form(client, member, project, limit_two):
    FeedFactory.create_batch(2, project=project)
    client.force_login(member)
    response = client.post("/catalog/feeds/", {"url": "https://example.org/f.xml", "project": project.pk})
    assert response.status_code == 200
    assert "already has 2 feeds" in " ".join(response.context["form"].non_field_errors())


def test_the_error_a_tenant_reads_is_bounded_however_long_its_problems(serve):
    data = generated_feed(30, url="https://images.example.org/" + "x" * 900 + "@y")
    feed = _import(serve(data.replace(b"<title>Appliance", b"<title>" + b"T" * 500)))
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "has an at sign after its host name" in feed.last_error
    assert len(feed.last_error) <= 2000

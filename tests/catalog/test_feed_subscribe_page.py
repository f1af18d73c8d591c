"""Subscribing on the catalog page says what really happened: the feed is being fetched by a worker,
and its row follows that fetch to its end, failure and reason included. A refused URL is said next to
the URL field, where the form is."""

from __future__ import annotations

from catalog.models import Feed
from tests.factories import FeedFactory

URL = "https://feeds.example.org/new.xml"


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_refused_url_is_shown_next_to_the_field_and_nothing_is_subscribed(client, member, project):
    client.force_login(member)
    response = client.post("/catalog/feeds/", {"url": "ftp://feeds.example.org/x.xml", "project": project.pk})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_url_error"' in html
    assert 'aria-invalid="true"' in html
    assert "is-invalid" in html
    # The page that answers opens at the form, not 9,000 px above it.
    assert 'action="/catalog/feeds/#subscribe"' in html
    assert 'id="subscribe"' in html
    assert "alert-success" not in html
    assert not Feed.objects.filter(project=project).exists()


def test_a_missing_project_is_shown_next_to_its_field(client, member):
    client.force_login(member)
    html = client.post("/catalog/feeds/", {"url": URL}).content.decode()
    assert 'id="id_project_error"' in html
    assert not Feed.objects.exists()


def test_subscribing_says_the_feed_is_being_fetched_and_shows_its_row(
    client, member, project, settings, django_capture_on_commit_callbacks
):
    settings.FEEDS_PER_PROJECT = 30
    for number in range(25):  # the new feed lands on the second page of the list
        FeedFactory(project=project, url=f"https://feeds.example.org/a{number:02}.xml")
    client.force_login(member)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post("/catalog/feeds/", {"url": URL, "project": project.pk})
    assert len(queued) == 1  # the import, for a worker
    feed = Feed.objects.get(url=URL)
    assert response.status_code == 302
    assert response.url == f"/catalog/?feeds_page=2#feed-{feed.pk}"
    page = client.get(response.url)
    assert _messages(page) == [f"Subscribed to {URL}; fetching the feed… The feed list shows how it goes."]
    html = page.content.decode()
    assert f'id="feed-{feed.pk}"' in html
    assert f'hx-get="/catalog/feeds/{feed.pk}/"' in html  # follows the fetch
    assert "Waiting for a worker to fetch the feed" in html


def test_the_feed_row_follows_the_fetch_to_its_failure_and_says_why(client, member, project):
    feed = FeedFactory(project=project, last_status=Feed.ImportStatus.IMPORTING)
    client.force_login(member)
    fetching = client.get(f"/catalog/feeds/{feed.pk}/").content.decode()
    assert "Fetching the feed" in fetching
    assert "hx-get" in fetching

    Feed.objects.filter(pk=feed.pk).update(
        last_status=Feed.ImportStatus.ERROR, last_error=f"{feed.url}: HTTP 404 Not Found"
    )
    failed = client.get(f"/catalog/feeds/{feed.pk}/").content.decode()
    assert "Failed" in failed
    assert "no feed at that URL (HTTP 404)" in failed
    assert "hx-get" not in failed  # done: it stops asking
    assert f'action="/catalog/feeds/{feed.pk}/retry/"' in failed


def test_an_imported_feed_says_how_many_versions_it_brought(client, member, project):
    feed = FeedFactory(project=project, last_status=Feed.ImportStatus.OK, last_item_count=3)
    client.force_login(member)
    assert "Imported: 3 appliance versions." in client.get(f"/catalog/feeds/{feed.pk}/").content.decode()


def test_another_projects_feed_row_is_not_found(client, outsider, project):
    feed = FeedFactory(project=project, last_status=Feed.ImportStatus.ERROR, last_error="HTTP 500")
    client.force_login(outsider)
    assert client.get(f"/catalog/feeds/{feed.pk}/").status_code == 404


def test_the_feed_row_needs_a_sign_in(client, project):
    feed = FeedFactory(project=project)
    assert client.get(f"/catalog/feeds/{feed.pk}/").status_code == 302


def test_retry_takes_the_reader_to_the_feeds_row(client, member, project, django_capture_on_commit_callbacks):
    feed = FeedFactory(project=project, last_status=Feed.ImportStatus.ERROR, last_error="HTTP 500")
    shared = FeedFactory(project=None, url="https://a.example.org/first.xml")
    client.force_login(member)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/catalog/feeds/{feed.pk}/retry/")
    assert response.url == f"/catalog/?feeds_page=1#feed-{feed.pk}"
    # Shared feeds come after every project's, on every database.
    feeds = client.get("/catalog/").context["feeds"]
    assert [row.pk for row in feeds] == [feed.pk, shared.pk]

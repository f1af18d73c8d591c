"""A project cannot fill the import queue: at most IMPORTS_PER_PROJECT imports queued or running at once."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from catalog import services
from catalog.models import Feed
from catalog.tasks import import_feed, refresh_feeds
from portal import errors
from portal.task_queues import Queue, cluster_name
from tests.catalog.publishing import publish
from tests.factories import FeedFactory

LIMIT_WORDS = re.escape("already has 1 feed import queued or running (at most 1 at once)")


@pytest.fixture
def queued_for_workers(monkeypatch, settings):
    """Tasks stay in the broker (the ORM one here), as they do until a worker takes them."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    settings.IMPORTS_PER_PROJECT = 1


def _queued_imports() -> list[int]:
    tasks = OrmQ.objects.filter(key=cluster_name(Queue.IMPORTS))
    return sorted(task.task["args"][0] for task in tasks)


def test_a_project_at_its_limit_is_told_why_and_keeps_nothing(
    queued_for_workers, member, project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = services.feed_subscribe(user=member, url="https://feeds.example.org/one.xml", project=project)
    with pytest.raises(errors.WrongState, match=LIMIT_WORDS):
        services.feed_subscribe(user=member, url="https://feeds.example.org/two.xml", project=project)
    failed = FeedFactory(project=project, last_status=Feed.ImportStatus.ERROR)
    with pytest.raises(errors.WrongState, match=LIMIT_WORDS):
        services.feed_refresh(user=member, feed=failed)
    assert list(Feed.objects.filter(project=project, last_status=Feed.ImportStatus.QUEUED)) == [first]
    assert not Feed.objects.filter(url__endswith="/two.xml").exists()
    assert _queued_imports() == [first.pk]


def test_the_limit_is_per_project_and_not_for_the_shared_catalog(
    queued_for_workers, member, project, outsider, other_project, operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ours = services.feed_subscribe(user=member, url="https://feeds.example.org/a.xml", project=project)
        theirs = services.feed_subscribe(user=outsider, url="https://feeds.example.org/b.xml", project=other_project)
        shared = [
            services.feed_subscribe(user=operator, url=f"https://feeds.example.org/s{n}.xml", project=None)
            for n in range(3)
        ]
    assert _queued_imports() == sorted([ours.pk, theirs.pk, *(feed.pk for feed in shared)])


@pytest.mark.django_db(transaction=True)
def test_parallel_subscriptions_cannot_pass_the_limit_together(queued_for_workers, member, project):
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def subscribe(number: int) -> None:
        start.wait()
        try:
            services.feed_subscribe(user=member, url=f"https://feeds.example.org/p{number}.xml", project=project)
            outcomes.append("queued")
        except errors.WrongState:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=subscribe, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["queued", "refused", "refused", "refused"]
    assert Feed.objects.filter(project=project).count() == 1


def test_the_hourly_refresh_goes_through_a_projects_feeds_one_after_the_other(
    queued_for_workers, http_server, member, project, django_capture_on_commit_callbacks
):
    long_ago = timezone.now() - timedelta(hours=2)
    feeds = [
        FeedFactory(
            project=project,
            url=publish(http_server, feed_name=f"f{n}.xml", name=f"i{n}.qcow2", appliance=f"app-{n}"),
            last_status=Feed.ImportStatus.OK,
            last_import_at=long_ago + timedelta(minutes=n),
        )
        for n in range(3)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert refresh_feeds() == 1
    assert _queued_imports() == [feeds[0].pk]  # the least recently imported first
    for number, feed in enumerate(feeds):
        OrmQ.objects.all().delete()
        with django_capture_on_commit_callbacks(execute=True):
            assert import_feed(feed.pk) == "ok: imported 1 item"  # what the import worker runs
        # Its place is free again: the project's next stale feed is queued, until none is left.
        assert _queued_imports() == ([feeds[number + 1].pk] if number + 1 < len(feeds) else [])

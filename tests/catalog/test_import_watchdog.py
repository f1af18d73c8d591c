"""No feed import stays "importing" for ever: an unexpected failure ends it, and so does a lost worker."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from catalog import services
from catalog.models import Feed
from tests.factories import FeedFactory


def test_an_unexpected_failure_ends_the_import_with_a_reason(db, monkeypatch):
    feed = FeedFactory(url="https://feeds.example.org/crash.xml")

    def crash(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(services, "fetch_if_changed", crash)
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert (feed.last_status, feed.last_error) == (Feed.ImportStatus.ERROR, "internal error: ZeroDivisionError")


def test_an_import_whose_worker_went_away_is_ended_by_the_watchdog(db, settings):
    stuck = FeedFactory(url="https://feeds.example.org/stuck.xml")
    fresh = FeedFactory(url="https://feeds.example.org/fresh.xml")
    long_ago = timezone.now() - timedelta(seconds=settings.TASK_TIMEOUT_SECONDS + 300)
    Feed.objects.filter(pk=stuck.pk).update(last_status=Feed.ImportStatus.IMPORTING, status_changed_at=long_ago)
    Feed.objects.filter(pk=fresh.pk).update(last_status=Feed.ImportStatus.QUEUED, status_changed_at=timezone.now())
    assert services.imports_watchdog() == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.last_status == Feed.ImportStatus.ERROR
    assert stuck.last_error.startswith("the import stopped (its worker went away)")
    assert fresh.last_status == Feed.ImportStatus.QUEUED

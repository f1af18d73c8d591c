"""django-q2 entry points for catalog work: load the row, call the service."""

from __future__ import annotations

from catalog import services
from catalog.models import Feed


def import_feed(feed_id: int) -> str:
    feed = Feed.objects.filter(pk=feed_id).first()
    if feed is None:
        return "feed no longer exists"
    services.feed_import(feed=feed)
    return feed.last_status


def refresh_feeds() -> int:
    """Queue an import of every feed, so new appliance versions appear without anyone asking."""
    feeds = list(Feed.objects.all())
    for feed in feeds:
        services.feed_queue_import(feed=feed)
    return len(feeds)


def watch_imports() -> int:
    """End feed imports whose worker went away."""
    return services.imports_watchdog()

"""django-q2 entry points for catalog work: load the row, call the service."""

from __future__ import annotations

from catalog import feed_refresh, services
from catalog.models import Feed


def import_feed(feed_id: int) -> str:
    feed = Feed.objects.filter(pk=feed_id).first()
    if feed is None:
        return "feed no longer exists"
    outcome = services.feed_import_outcome(feed=feed)
    # Its place in the project's import limit is free again: the refresh goes on with the next feed.
    feed_refresh.feed_refresh_next(project_id=feed.project_id)
    return f"{feed.last_status}: {outcome.message}"


def refresh_feeds() -> int:
    """Queue an import of every feed, so new appliance versions appear without anyone asking."""
    return feed_refresh.feeds_refresh()


def watch_imports() -> int:
    """End feed imports whose worker went away."""
    return services.imports_watchdog()

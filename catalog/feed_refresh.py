"""The hourly refresh of every feed, within each project's import limit (``catalog.import_limits``).

The refresh queues what each project's limit allows, least recently imported first. A project with
more feeds than that is not refreshed less often for it: whenever one of its imports ends, its next
feed not imported for ``STALE_AFTER`` is queued (``feed_refresh_next``), until all of them are fresh.

A project's own catalog (format ``local``) is never refreshed: nothing fetches it. A feed whose
server says it is unchanged (HTTP 304) costs one request per refresh (``services.feed_import``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from catalog.import_limits import BUSY
from catalog.models import Feed
from catalog.services import feed_queue_import
from portal import errors

logger = logging.getLogger(__name__)

# Under the refresh period (an hour), so a feed the last round imported counts as stale in the next.
STALE_AFTER = timedelta(minutes=30)


def _oldest_first(feeds: QuerySet[Feed]) -> QuerySet[Feed]:
    fetched = feeds.exclude(format=Feed.Format.LOCAL).exclude(last_status__in=BUSY)
    return fetched.order_by(F("last_import_at").asc(nulls_first=True), "pk")


def _queue(feed: Feed) -> bool:
    try:
        feed_queue_import(feed=feed)
    except errors.WrongState as refused:
        logger.info("refresh of feed %s waits: %s", feed.pk, refused.detail)
        return False
    return True


def feeds_refresh() -> int:
    """Queue an import of every feed that is not being imported, as far as each project's limit allows;
    return how many were queued (the others follow as imports end)."""
    return sum(_queue(feed) for feed in _oldest_first(Feed.objects.all()))


def feed_refresh_next(*, project_id: int | None, now: datetime | None = None) -> bool:
    """After an import of ``project_id`` ended: queue its least recently imported stale feed, if any."""
    if project_id is None:
        return False  # shared feeds have no limit: the refresh queued all of them at once
    cutoff = (now or timezone.now()) - STALE_AFTER
    stale = Feed.objects.filter(Q(last_import_at__isnull=True) | Q(last_import_at__lt=cutoff), project_id=project_id)
    feed = _oldest_first(stale).first()
    return feed is not None and _queue(feed)


__all__ = ["STALE_AFTER", "feed_refresh_next", "feeds_refresh"]

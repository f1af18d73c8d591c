"""Writes to the catalog: subscribing to feeds and importing them (images: ``catalog.image_cache``)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.feed_store import store_feed
from catalog.feeds import FeedError, parse_vmcast
from catalog.fetch import FetchError, FetchPolicy, fetch_bytes, validate_url
from catalog.image_cache import image_ensure_cached as image_ensure_cached  # set-up commands call it from here
from catalog.import_limits import import_room_check
from catalog.models import Feed
from catalog.redaction import redact_url
from portal import audit, errors
from portal.models import Project, Role
from portal.scoping import User, is_operator, require_role
from portal.task_queues import Queue, enqueue

logger = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000


def _require_feed_manager(user: User, project: Project | None) -> None:
    """Members manage their project's feeds; only operators manage the shared catalog."""
    if project is None:
        if not is_operator(user):
            raise errors.PermissionDenied("only operators may add or remove feeds of the shared catalog")
    else:
        require_role(user, project, Role.MEMBER)


def _check_feed_count(project: Project | None) -> None:
    """Refuse a subscription past ``PORTAL_FEEDS_PER_PROJECT``; call inside the transaction that subscribes."""
    if project is not None:
        # Parallel subscriptions of one project queue on its row, so two cannot both take the last place.
        # (The shared catalog has no row to lock; only operators add to it.)
        Project.objects.select_for_update().filter(pk=project.pk).first()
    limit = settings.FEEDS_PER_PROJECT
    if Feed.objects.filter(project=project).count() >= limit:
        where = f"project '{project.name}'" if project is not None else "the shared catalog"
        raise errors.QuotaExceeded(f"{where} already has {limit} feeds, the most it may have; remove one first")


def _subscribe(*, user: User, url: str, project: Project | None) -> Feed:
    _require_feed_manager(user, project)
    try:
        validate_url(url)
    except FetchError as exc:
        raise errors.Invalid.for_field("url", str(exc)) from None
    try:
        with transaction.atomic():
            if Feed.objects.filter(project=project, url=url).exists():
                raise IntegrityError("duplicate subscription")
            _check_feed_count(project)
            # Anonymous callers were refused above; the check narrows the type for the foreign key.
            subscriber = user if isinstance(user, get_user_model()) else None
            feed = Feed.objects.create(project=project, url=url, created_by=subscriber)
    except IntegrityError:
        raise errors.Invalid.for_field("url", "this feed is already subscribed") from None
    audit.record(actor=user, action="feed.subscribe", target=feed, project=project, url=redact_url(url))
    return feed


def feed_subscribe(*, user: User, url: str, project: Project | None) -> Feed:
    """Subscribe ``project`` (or, for operators, the shared catalog) to a VMcast and queue its import."""
    with transaction.atomic():  # an import refused for now leaves no subscription behind
        feed = _subscribe(user=user, url=url, project=project)
        feed_queue_import(feed=feed)
    return feed


def feed_subscribe_and_import(*, user: User, url: str, project: Project | None) -> Feed:
    """The subscription to ``url`` (made under ``feed_subscribe``'s rules if missing), imported now, here.

    For set-up commands that need the catalog filled before any worker runs; running it again
    reuses the subscription and imports the feed again.
    """
    feed = Feed.objects.filter(project=project, url=url).first()
    if feed is None:
        feed = _subscribe(user=user, url=url, project=project)
    else:
        _require_feed_manager(user, project)
    return feed_import(feed=feed)


def feed_unsubscribe(*, user: User, feed: Feed) -> None:
    """Remove a subscription with its appliances; refused while stacks still use one of its versions."""
    _require_feed_manager(user, feed.project)
    try:
        with transaction.atomic():
            audit.record(actor=user, action="feed.unsubscribe", target=feed, project=feed.project, url=feed.display_url)
            feed.delete()
    except ProtectedError:
        # Instances keep the version they were built from (for their record), so it cannot go.
        raise errors.WrongState(f"feed '{feed}' cannot be removed: stacks were launched from it") from None


def feed_retry(*, user: User, feed: Feed) -> None:
    """Import ``feed`` again now, at the request of someone who manages it (after fixing its server, say)."""
    _require_feed_manager(user, feed.project)
    if feed.last_status in (Feed.ImportStatus.QUEUED, Feed.ImportStatus.IMPORTING):
        raise errors.WrongState(f"feed '{feed}' is being imported already")
    audit.record(actor=user, action="feed.retry", target=feed, project=feed.project, url=feed.display_url)
    feed_queue_import(feed=feed)


def feed_queue_import(*, feed: Feed) -> None:
    """Queue a background import of ``feed`` once the current transaction commits.

    Refused (``WrongState``, saying why) while the feed's project has ``IMPORTS_PER_PROJECT`` imports
    queued or running (``catalog.import_limits``).
    """
    with transaction.atomic():
        import_room_check(feed=feed)
        Feed.objects.filter(pk=feed.pk).update(last_status=Feed.ImportStatus.QUEUED, status_changed_at=timezone.now())
    feed.last_status = Feed.ImportStatus.QUEUED
    transaction.on_commit(
        lambda: enqueue("catalog.tasks.import_feed", feed.pk, queue=Queue.IMPORTS, task_name=f"feed-{feed.pk}")
    )


def feed_import(*, feed: Feed) -> Feed:
    """Fetch, parse and store a feed. A feed refused (unreadable, over a limit, an item wrong) leaves the
    catalog as it was; see ``store_feed`` for how an accepted one is written."""
    Feed.objects.filter(pk=feed.pk).update(last_status=Feed.ImportStatus.IMPORTING, status_changed_at=timezone.now())
    try:
        data = fetch_bytes(feed.url, policy=FetchPolicy.for_feeds(), max_bytes=settings.FEED_MAX_BYTES)
        parsed = parse_vmcast(data)
        store_feed(feed=feed, parsed=parsed)
    except (FetchError, FeedError, CatalogError) as exc:
        _finish_import(feed, status=Feed.ImportStatus.ERROR, error=str(exc))
        logger.info("feed %s import failed: %s", feed.pk, exc)
        return feed
    except Exception as exc:
        # A bug must not leave the feed "importing" for ever: it ends, with a reason an operator can use.
        logger.exception("feed %s import crashed", feed.pk)
        _finish_import(feed, status=Feed.ImportStatus.ERROR, error=f"internal error: {exc.__class__.__name__}")
        return feed
    _finish_import(feed, status=Feed.ImportStatus.OK, error="", count=len(parsed.items), title=parsed.title)
    return feed


def imports_watchdog(*, now: datetime | None = None) -> int:
    """End imports whose worker went away (queued or importing longer than any task runs); return how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS)
    stuck = Feed.objects.filter(
        last_status__in=(Feed.ImportStatus.QUEUED, Feed.ImportStatus.IMPORTING), status_changed_at__lt=cutoff
    )
    return stuck.update(
        last_status=Feed.ImportStatus.ERROR,
        last_error="the import stopped (its worker went away); it runs again at the next hourly refresh",
        last_import_at=now,
    )


def _finish_import(feed: Feed, *, status: str, error: str, count: int | None = None, title: str = "") -> None:
    feed.last_status = status
    # Every tenant reading a shared feed sees its error, which may quote a server's own words at length.
    feed.last_error = error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"
    feed.last_import_at = timezone.now()
    fields = ["last_status", "last_error", "last_import_at"]
    if count is not None:
        feed.last_item_count = count
        fields.append("last_item_count")
    if title:
        feed.title = title
        fields.append("title")
    feed.save(update_fields=fields)

"""Writes to the catalog: subscribing to feeds and importing them (images: ``catalog.image_cache``)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.feed_store import store_feed
from catalog.feeds import FeedError, parse_feed
from catalog.fetch import FetchError, FetchPolicy, Validators, fetch_bytes, fetch_if_changed, validate_url
from catalog.image_cache import image_ensure_cached as image_ensure_cached  # set-up commands call it from here
from catalog.import_limits import import_room_check
from catalog.models import ApplianceVersion, Feed
from catalog.redaction import redact_url
from catalog.selectors import live_stacks_using
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


# Stacks named when a feed cannot be removed (the rest are counted).
MAX_STACKS_NAMED = 5


def feed_unsubscribe(*, user: User, feed: Feed) -> None:
    """Remove a subscription with its appliances; refused while a live stack uses one of its versions.

    Deleted stacks do not hold it: their instances keep their record without the version.
    """
    _require_feed_manager(user, feed.project)
    try:
        with transaction.atomic():
            # Locked first, so no launch takes one of its versions between the check and the delete
            # (a launch's instance row waits on the version's lock, then finds it gone).
            list(ApplianceVersion.objects.select_for_update(of=("self",)).filter(appliance__feed=feed).values("pk"))
            _refuse_while_used(feed)
            audit.record(actor=user, action="feed.unsubscribe", target=feed, project=feed.project, url=feed.display_url)
            feed.delete()
    except (ProtectedError, IntegrityError):
        # A launch committed one of its versions meanwhile (where the lock above cannot wait for it).
        raise errors.WrongState(f"feed '{feed}' cannot be removed: a stack was just launched from it") from None


def _refuse_while_used(feed: Feed) -> None:
    live = live_stacks_using(feed)
    named = list(live[: MAX_STACKS_NAMED + 1])
    if not named:
        return
    shared = feed.project_id is None  # then the stacks may be any project's: each is named with its project
    names = [f"'{stack.name}'" + (f" (project '{stack.project.name}')" if shared else "") for stack in named]
    if len(named) > MAX_STACKS_NAMED:
        more = live.count() - MAX_STACKS_NAMED
        names[MAX_STACKS_NAMED:] = [f"{more} more"]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    raise errors.WrongState(
        f"feed '{feed}' cannot be removed while stacks use its appliances: {listed}; delete those stacks first"
    )


def _refuse_local(feed: Feed) -> None:
    if feed.format == Feed.Format.LOCAL:
        raise errors.WrongState(
            f"'{feed}' is the project's own catalog (its uploads and captured stacks): "
            "it is not fetched from anywhere, so there is nothing to refresh"
        )


def feed_refresh(*, user: User, feed: Feed) -> Feed:
    """Import ``feed`` again now, at the request of someone who manages it (to see new versions at once,
    or after fixing its server). Refused for a project's own catalog, for a feed being imported, and past
    the project's import limit (``feed_queue_import``)."""
    _require_feed_manager(user, feed.project)
    _refuse_local(feed)
    if feed.last_status in (Feed.ImportStatus.QUEUED, Feed.ImportStatus.IMPORTING):
        raise errors.WrongState(f"feed '{feed}' is being imported already")
    with transaction.atomic():  # an import refused for now is not audited
        feed_queue_import(feed=feed)
        audit.record(actor=user, action="feed.refresh", target=feed, project=feed.project, url=feed.display_url)
    return feed


def feed_queue_import(*, feed: Feed) -> None:
    """Queue a background import of ``feed`` once the current transaction commits.

    Refused (``WrongState``, saying why) for a project's own catalog, and while the feed's project has
    ``IMPORTS_PER_PROJECT`` imports queued or running (``catalog.import_limits``).
    """
    _refuse_local(feed)
    with transaction.atomic():
        import_room_check(feed=feed)
        Feed.objects.filter(pk=feed.pk).update(last_status=Feed.ImportStatus.QUEUED, status_changed_at=timezone.now())
    feed.last_status = Feed.ImportStatus.QUEUED
    transaction.on_commit(
        lambda: enqueue("catalog.tasks.import_feed", feed.pk, queue=Queue.IMPORTS, task_name=f"feed-{feed.pk}")
    )


UNCHANGED = "unchanged since the last import (the server answered 304 Not Modified)"


@dataclass(frozen=True)
class ImportOutcome:
    feed: Feed
    message: str  # what happened, in words: the import task's result


def feed_import(*, feed: Feed) -> Feed:
    """Fetch, parse and store a feed (``feed_import_outcome``); return it as the import left it."""
    return feed_import_outcome(feed=feed).feed


def feed_import_outcome(*, feed: Feed) -> ImportOutcome:
    """Fetch, parse and store a feed. A feed refused (unreadable, over a limit, an item wrong) leaves the
    catalog as it was; see ``store_feed`` for how an accepted one is written.

    The fetch is conditional: a server that answers 304 to the validators of the last accepted
    answer costs that request only (nothing parsed, nothing stored). The new validators are kept only
    once the feed they came with is accepted, so a refused feed is fetched whole again next time.
    """
    if feed.format == Feed.Format.LOCAL:
        return ImportOutcome(feed, "a project's own catalog is not fetched")
    Feed.objects.filter(pk=feed.pk).update(last_status=Feed.ImportStatus.IMPORTING, status_changed_at=timezone.now())
    policy = FetchPolicy.for_feeds()
    fetch_more = _further_files_fetcher(policy)
    try:
        answer = fetch_if_changed(
            feed.url,
            policy=policy,
            max_bytes=settings.FEED_MAX_BYTES,
            validators=Validators(etag=feed.etag, last_modified=feed.last_modified),
        )
        if answer.data is None:
            _finish_import(feed, status=Feed.ImportStatus.OK, error="")
            logger.info("feed %s %s", feed.pk, UNCHANGED)
            return ImportOutcome(feed, UNCHANGED)
        parsed = parse_feed(answer.data, url=feed.url, fetch_more=fetch_more)
        store_feed(feed=feed, parsed=parsed)
    except (FetchError, FeedError, CatalogError) as exc:
        _finish_import(feed, status=Feed.ImportStatus.ERROR, error=str(exc))
        logger.info("feed %s import failed: %s", feed.pk, exc)
        return ImportOutcome(feed, f"failed: {feed.last_error}")
    except Exception as exc:
        # A bug must not leave the feed "importing" for ever: it ends, with a reason an operator can use.
        logger.exception("feed %s import crashed", feed.pk)
        _finish_import(feed, status=Feed.ImportStatus.ERROR, error=f"internal error: {exc.__class__.__name__}")
        return ImportOutcome(feed, f"failed: {feed.last_error}")
    _finish_import(
        feed,
        status=Feed.ImportStatus.OK,
        error="",
        count=len(parsed.items),
        title=parsed.title,
        accepted=_Accepted(format=parsed.format, validators=answer.validators),
    )
    return ImportOutcome(feed, f"imported {len(parsed.items)} item{'s' if len(parsed.items) != 1 else ''}")


def _further_files_fetcher(policy: FetchPolicy) -> Callable[[str], bytes]:
    """How a feed's further files (simplestreams' products files) are fetched: with the feed's guards
    and size cap, and one deadline for the feed and all of them, so a feed of many files ends in a
    task's time like a feed of one."""
    ends = time.monotonic() + policy.transfer_seconds

    def fetch(url: str) -> bytes:
        left = ends - time.monotonic()
        if left <= 0:
            raise FetchError(f"{url}: the feed's files took longer than {policy.transfer_seconds:g} s in all, stopped")
        within = dataclasses.replace(policy, transfer_seconds=left)
        return fetch_bytes(url, policy=within, max_bytes=settings.FEED_MAX_BYTES)

    return fetch


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


@dataclass(frozen=True)
class _Accepted:
    """What an accepted answer teaches about its feed: its dialect, and how to ask whether it changed."""

    format: str
    validators: Validators


def _finish_import(
    feed: Feed, *, status: str, error: str, count: int | None = None, title: str = "", accepted: _Accepted | None = None
) -> None:
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
    if accepted is not None:
        known = accepted.format in Feed.Format.values and accepted.format != Feed.Format.LOCAL
        feed.format = accepted.format if known else Feed.Format.UNKNOWN
        feed.etag = accepted.validators.etag
        feed.last_modified = accepted.validators.last_modified
        fields += ["format", "etag", "last_modified"]
    feed.save(update_fields=fields)

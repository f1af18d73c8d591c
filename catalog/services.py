"""Writes to the catalog: subscribing to feeds, importing them, caching their images."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django_q.tasks import async_task

from catalog.feeds import FeedError, ParsedFeed, parse_vmcast
from catalog.fetch import FetchError, FetchPolicy, fetch_bytes, fetch_to_file, validate_url
from catalog.images import ImageError, convert_to_qcow2, inspect_image
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed
from portal import audit, errors, throttle
from portal.models import Project, Role
from portal.scoping import User, is_operator, require_role

logger = logging.getLogger(__name__)

ByteProgress = Callable[[int, int | None], None]
# A download claimed by a worker that has not reported for this long is taken over.
_STALE_DOWNLOAD = timedelta(minutes=10)
_PROGRESS_EVERY_SECONDS = 1.0


class CatalogError(errors.PortalError):
    """A feed or image from outside cannot be used (fetch failed, checksum mismatch, unsafe image).

    The publisher is to blame rather than the caller, so it answers like a bad gateway.
    """

    code = "catalog_error"
    status = 502


def _require_feed_manager(user: User, project: Project | None) -> None:
    """Members manage their project's feeds; only operators manage the shared catalog."""
    if project is None:
        if not is_operator(user):
            raise errors.PermissionDenied("only operators may add or remove feeds of the shared catalog")
    else:
        require_role(user, project, Role.MEMBER)


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
            # Anonymous callers were refused above; the check narrows the type for the foreign key.
            subscriber = user if isinstance(user, get_user_model()) else None
            feed = Feed.objects.create(project=project, url=url, created_by=subscriber)
    except IntegrityError:
        raise errors.Invalid.for_field("url", "this feed is already subscribed") from None
    audit.record(actor=user, action="feed.subscribe", target=feed, project=project, url=url)
    return feed


def feed_subscribe(*, user: User, url: str, project: Project | None) -> Feed:
    """Subscribe ``project`` (or, for operators, the shared catalog) to a VMcast and queue its import."""
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
            audit.record(actor=user, action="feed.unsubscribe", target=feed, project=feed.project, url=feed.url)
            feed.delete()
    except ProtectedError:
        # Instances keep the version they were built from (for their record), so it cannot go.
        raise errors.WrongState(f"feed '{feed}' cannot be removed: stacks were launched from it") from None


def feed_queue_import(*, feed: Feed) -> None:
    """Queue a background import of ``feed`` once the current transaction commits."""
    Feed.objects.filter(pk=feed.pk).update(last_status=Feed.ImportStatus.QUEUED)
    feed.last_status = Feed.ImportStatus.QUEUED
    transaction.on_commit(lambda: async_task("catalog.tasks.import_feed", feed.pk, task_name=f"feed-{feed.pk}"))


def feed_import(*, feed: Feed) -> Feed:
    """Fetch, parse and store a feed. All or nothing: a failed import leaves the catalog as it was."""
    Feed.objects.filter(pk=feed.pk).update(last_status=Feed.ImportStatus.IMPORTING)
    try:
        data = fetch_bytes(feed.url, policy=FetchPolicy.from_settings(), max_bytes=settings.FEED_MAX_BYTES)
        parsed = parse_vmcast(data)
        with transaction.atomic():
            _store_feed(feed=feed, parsed=parsed)
    except (FetchError, FeedError, CatalogError) as exc:
        _finish_import(feed, status=Feed.ImportStatus.ERROR, error=str(exc))
        logger.info("feed %s import failed: %s", feed.pk, exc)
        return feed
    _finish_import(feed, status=Feed.ImportStatus.OK, error="", count=len(parsed.items), title=parsed.title)
    return feed


def _finish_import(feed: Feed, *, status: str, error: str, count: int | None = None, title: str = "") -> None:
    feed.last_status = status
    feed.last_error = error
    feed.last_import_at = timezone.now()
    fields = ["last_status", "last_error", "last_import_at"]
    if count is not None:
        feed.last_item_count = count
        fields.append("last_item_count")
    if title:
        feed.title = title
        fields.append("title")
    feed.save(update_fields=fields)


def _store_feed(*, feed: Feed, parsed: ParsedFeed) -> None:
    for item in parsed.items:
        appliance, _ = Appliance.objects.update_or_create(
            feed=feed,
            identifier=item.appliance,
            defaults={"title": item.title, "description": item.description, "role": item.role},
        )
        existing = ApplianceVersion.objects.filter(appliance=appliance, version=item.version).select_related("image")
        known = existing.first()
        if known and known.image.sha256 != item.sha256:
            # A publisher must not swap the bytes behind a version people already run.
            raise CatalogError(
                f"appliance '{item.appliance}' version '{item.version}' changed its sha256; publish a new version"
            )
        image, _ = CachedImage.objects.get_or_create(sha256=item.sha256, defaults={"source_format": item.disk_format})
        ApplianceVersion.objects.update_or_create(
            appliance=appliance,
            version=item.version,
            defaults={
                "image_url": item.url,
                "size_bytes": item.size_bytes,
                "media_type": item.media_type,
                "disk_format": item.disk_format,
                "arch": item.arch,
                "min_ram_mib": item.min_ram_mib,
                "min_vcpus": item.min_vcpus,
                "service_port": item.service_port,
                "published_at": item.published,
                "image": image,
            },
        )


def image_ensure_cached(*, version: ApplianceVersion, progress: ByteProgress | None = None) -> CachedImage:
    """Return the version's image once it is downloaded, verified and converted; download it if needed.

    Several workers may ask for the same image at once: one claims it, the others wait.
    """
    image = version.image
    while True:
        image.refresh_from_db()
        if image.status == CachedImage.Status.READY and Path(image.path).is_file():
            return image
        stale_before = timezone.now() - _STALE_DOWNLOAD
        claimed = (
            CachedImage.objects.filter(pk=image.pk)
            .exclude(status=CachedImage.Status.DOWNLOADING, updated_at__gte=stale_before)
            .update(status=CachedImage.Status.DOWNLOADING, error="", bytes_done=0, updated_at=timezone.now())
        )
        if claimed:
            return _download_image(image=image, version=version, progress=progress)
        time.sleep(0.5)


def _download_image(*, image: CachedImage, version: ApplianceVersion, progress: ByteProgress | None) -> CachedImage:
    cache_dir = Path(settings.IMAGE_CACHE_DIR)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{image.sha256}.{os.getpid()}.download"
    converted = cache_dir / f".{image.sha256}.{os.getpid()}.qcow2"
    final = cache_dir / f"{image.sha256}.qcow2"

    def record(done: int, total: int) -> None:
        # Also the claim's heartbeat: waiting workers see the download is alive.
        CachedImage.objects.filter(pk=image.pk).update(bytes_done=done, bytes_total=total, updated_at=timezone.now())
        if progress:
            progress(done, total)

    throttled = throttle.every(_PROGRESS_EVERY_SECONDS, record)

    def report(done: int, total: int | None) -> None:
        # A server that sends no Content-Length still has the size the feed announced.
        throttled(done, total or version.size_bytes)

    try:
        result = fetch_to_file(
            version.image_url,
            partial,
            policy=FetchPolicy.from_settings(),
            max_bytes=settings.IMAGE_MAX_BYTES,
            progress=report,
        )
        if result.sha256 != image.sha256:
            raise CatalogError(f"sha256 mismatch: the feed promised {image.sha256}, the download is {result.sha256}")
        facts = inspect_image(
            partial, declared_format=image.source_format, max_virtual_bytes=settings.IMAGE_MAX_VIRTUAL_BYTES
        )
        convert_to_qcow2(partial, source_format=image.source_format, destination=converted)
        converted.replace(final)
    except (FetchError, ImageError, CatalogError, OSError) as exc:
        CachedImage.objects.filter(pk=image.pk).update(status=CachedImage.Status.ERROR, error=str(exc))
        image.refresh_from_db()
        raise CatalogError(f"image for {version}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
        converted.unlink(missing_ok=True)
    CachedImage.objects.filter(pk=image.pk).update(
        status=CachedImage.Status.READY,
        path=str(final),
        size_bytes=final.stat().st_size,
        virtual_size_bytes=facts.virtual_size_bytes,
        bytes_done=result.size_bytes,
        bytes_total=result.size_bytes,
        error="",
    )
    image.refresh_from_db()
    return image

"""Writes to the catalog: subscribing to feeds, importing them, caching their images."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q, QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from catalog import selectors
from catalog.feeds import FeedError, ParsedFeed, parse_vmcast
from catalog.fetch import FetchError, FetchPolicy, FetchResult, fetch_bytes, fetch_to_file, validate_url
from catalog.images import ImageError, ImageFacts, convert_to_qcow2, inspect_image
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed
from catalog.redaction import redact_url, redact_urls_in
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

    def __init__(self, detail: str) -> None:
        # Messages quote feed and image URLs; whoever builds one, their credentials stay out of it.
        super().__init__(redact_urls_in(detail))


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
    audit.record(actor=user, action="feed.subscribe", target=feed, project=project, url=redact_url(url))
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
    """Queue a background import of ``feed`` once the current transaction commits."""
    Feed.objects.filter(pk=feed.pk).update(last_status=Feed.ImportStatus.QUEUED, status_changed_at=timezone.now())
    feed.last_status = Feed.ImportStatus.QUEUED
    transaction.on_commit(lambda: async_task("catalog.tasks.import_feed", feed.pk, task_name=f"feed-{feed.pk}"))


def feed_import(*, feed: Feed) -> Feed:
    """Fetch, parse and store a feed. All or nothing: a failed import leaves the catalog as it was."""
    Feed.objects.filter(pk=feed.pk).update(last_status=Feed.ImportStatus.IMPORTING, status_changed_at=timezone.now())
    try:
        data = fetch_bytes(feed.url, policy=FetchPolicy.for_feeds(), max_bytes=settings.FEED_MAX_BYTES)
        parsed = parse_vmcast(data)
        with transaction.atomic():
            _store_feed(feed=feed, parsed=parsed)
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
        if known and (known.image.sha256, known.image.source_format) != (item.sha256, item.disk_format):
            # A publisher must not swap the bytes (or how they are read) behind a version people already run.
            changed = "sha256" if known.image.sha256 != item.sha256 else "format"
            raise CatalogError(
                f"appliance '{item.appliance}' version '{item.version}' changed its image ({changed}); "
                "publish a new version"
            )
        # Keyed by content and declared format: a feed declaring known bytes as another format gets its
        # own row and cannot change the image other feeds' versions (other projects' launches) use.
        image, _ = CachedImage.objects.get_or_create(sha256=item.sha256, source_format=item.disk_format)
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

    Several workers may ask for the same image at once: one claims it, and those fetching from the
    same URL wait for it. A launch whose version names another URL for the same image (another
    feed, perhaps another project's) downloads on its own rather than wait: a slow or broken
    server behind someone else's feed must not hold up or break this launch.
    """
    image = version.image
    source = _source_key(version.image_url)
    while True:
        image.refresh_from_db()
        if image.status == CachedImage.Status.READY and Path(image.path).is_file():
            image.last_used_at = timezone.now()
            CachedImage.objects.filter(pk=image.pk).update(last_used_at=image.last_used_at)
            return image
        stale_before = timezone.now() - _STALE_DOWNLOAD
        claimed = (
            CachedImage.objects.filter(pk=image.pk)
            .exclude(status=CachedImage.Status.DOWNLOADING, updated_at__gte=stale_before)
            .update(
                status=CachedImage.Status.DOWNLOADING,
                error="",
                bytes_done=0,
                size_bytes=0,
                download_source=source,
                updated_at=timezone.now(),
            )
        )
        if claimed:
            return _download_image(image=image, version=version, source=source, progress=progress, claimed=True)
        image.refresh_from_db(fields=["status", "download_source"])
        if image.status == CachedImage.Status.DOWNLOADING and image.download_source != source:
            return _download_image(image=image, version=version, source=source, progress=progress, claimed=False)
        time.sleep(0.5)


def _source_key(url: str) -> str:
    # A digest, so the row does not hold a second copy of any credentials in the URL.
    return hashlib.sha256(url.encode()).hexdigest()


def _download_image(
    *, image: CachedImage, version: ApplianceVersion, source: str, progress: ByteProgress | None, claimed: bool
) -> CachedImage:
    """Download, verify, measure and convert; ``claimed`` says whether the row's claim is ours to report on."""
    cache_dir = Path(settings.IMAGE_CACHE_DIR)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _sweep_dead_partials(cache_dir)
    stem = f"{image.sha256}-{image.source_format}"  # content and format, like the row's key
    token = uuid.uuid4().hex[:12]  # several downloads of one image may run side by side
    partial = cache_dir / f".{stem}.{token}.download"
    converted = cache_dir / f".{stem}.{token}.qcow2"
    ours = CachedImage.objects.filter(pk=image.pk, status=CachedImage.Status.DOWNLOADING, download_source=source)

    def record(done: int, total: int) -> None:
        # Also the claim's heartbeat: waiting workers see the download is alive.
        if claimed:
            ours.update(bytes_done=done, bytes_total=total, updated_at=timezone.now())
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
            policy=FetchPolicy.for_images(),
            max_bytes=settings.IMAGE_MAX_BYTES,
            progress=report,
        )
        if result.sha256 != image.sha256:
            raise CatalogError(f"sha256 mismatch: the feed promised {image.sha256}, the download is {result.sha256}")
        facts = inspect_image(
            partial,
            declared_format=image.source_format,
            max_virtual_bytes=settings.IMAGE_MAX_VIRTUAL_BYTES,
            max_converted_bytes=settings.IMAGE_MAX_CONVERTED_BYTES,
        )
        _make_room(image=image, needed=facts.converted_bytes, reserve=ours if claimed else None)
        # The measurement is what qemu-img will write; the file-size limit holds it to that (plus slack).
        limit = min(settings.IMAGE_MAX_CONVERTED_BYTES, facts.converted_bytes + facts.converted_bytes // 8 + 2**26)
        convert_to_qcow2(partial, source_format=image.source_format, destination=converted, max_bytes=limit)
        partial.unlink()
        return _publish(
            image=image, converted=converted, final=cache_dir / f"{stem}.qcow2", facts=facts, downloaded=result
        )
    except (FetchError, ImageError, CatalogError, OSError) as exc:
        if claimed:  # still ours: another download may have finished it meanwhile
            ours.update(status=CachedImage.Status.ERROR, error=str(exc), size_bytes=0)
        raise CatalogError(f"image for {version}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
        converted.unlink(missing_ok=True)


def _sweep_dead_partials(cache_dir: Path) -> None:
    """Remove what downloads killed mid-way left: no task outlives the task timeout, so older ones are dead."""
    dead_before = time.time() - settings.TASK_TIMEOUT_SECONDS
    for leftover in cache_dir.glob(".*"):
        try:
            if leftover.suffix in (".download", ".qcow2") and leftover.stat().st_mtime < dead_before:
                leftover.unlink()
        except OSError:
            continue  # gone already, or not ours to remove


def _make_room(*, image: CachedImage, needed: int, reserve: QuerySet[CachedImage] | None) -> None:
    """Evict least recently used images no instance needs until ``needed`` more bytes fit in the cache.

    Images being downloaded count with what they reserved. Every counted row is locked meanwhile, so
    two downloads cannot both take the last free space. ``reserve`` (our claim) then holds ``needed``.
    """
    cap = settings.IMAGE_CACHE_MAX_BYTES
    alive = Q(status=CachedImage.Status.DOWNLOADING, updated_at__gte=timezone.now() - _STALE_DOWNLOAD)
    with transaction.atomic():
        counted = list(
            CachedImage.objects.select_for_update()
            .filter(Q(status=CachedImage.Status.READY) | alive)
            .exclude(pk=image.pk)
            .order_by("pk")
        )
        used = sum(row.size_bytes for row in counted)
        if used + needed > cap:
            in_use = set(selectors.cached_images_in_use().values_list("pk", flat=True))
            unused = [row for row in counted if row.status == CachedImage.Status.READY and row.pk not in in_use]
            unused.sort(key=lambda row: (row.last_used_at or row.updated_at, row.pk))
            evict: list[CachedImage] = []
            for row in unused:
                if used + needed <= cap:
                    break
                evict.append(row)
                used -= row.size_bytes
            if used + needed > cap:
                raise CatalogError(
                    f"the image cache is full: this image needs {needed} bytes, and {used} of the "
                    f"{cap} allowed (PORTAL_IMAGE_CACHE_MAX_BYTES) hold images in use or being downloaded"
                )
            CachedImage.objects.filter(pk__in=[row.pk for row in evict]).update(
                status=CachedImage.Status.MISSING, path="", size_bytes=0, download_source=""
            )
            for row in evict:
                # Deleted at once: should this transaction roll back, a ready row without its file
                # is downloaded again on next use.
                if row.path:
                    Path(row.path).unlink(missing_ok=True)
                logger.info("image cache: evicted %s (%s bytes) to make room", row, row.size_bytes)
        if reserve is not None:
            reserve.update(size_bytes=needed)


def _publish(
    *, image: CachedImage, converted: Path, final: Path, facts: ImageFacts, downloaded: FetchResult
) -> CachedImage:
    """Make the converted file the cached image, unless a download beside ours already did."""
    with transaction.atomic():
        row = CachedImage.objects.select_for_update().get(pk=image.pk)
        if row.status == CachedImage.Status.READY and Path(row.path).is_file():
            return row  # ours is dropped by the caller
        converted.replace(final)
        CachedImage.objects.filter(pk=image.pk).update(
            status=CachedImage.Status.READY,
            path=str(final),
            size_bytes=final.stat().st_size,
            virtual_size_bytes=facts.virtual_size_bytes,
            bytes_done=downloaded.size_bytes,
            bytes_total=downloaded.size_bytes,
            error="",
            last_used_at=timezone.now(),
        )
    image.refresh_from_db()
    return image

"""The image cache: each image's bytes stored once, and which versions may use them.

Bytes are stored once per content and declared format (``CachedImage``). A version may use them
only after its own URL delivered bytes with that sha256 to this portal (its ``ImageDelivery``):
a feed that merely names the sha256 of an image another project cached gets nothing from that
cache, and its version's status says nothing about it. A version whose bytes are stored already
still downloads from its own URL once, to prove the URL delivers them; those bytes are verified
and dropped, not stored again.

Each version has at most one download at a time, however many launches wait for it. Downloads
run in tasks of their own (``provisioning.tasks.download_image``), each with a task's whole time
budget; ``image_ensure_cached`` is the same work done here and now, for set-up commands.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.fetch import FetchError, FetchPolicy, fetch_to_file
from catalog.image_room import STALE_DOWNLOAD, make_room, sweep_dead_partials
from catalog.images import ImageError, ImageFacts, convert_to_qcow2, inspect_image
from catalog.models import ApplianceVersion, CachedImage, ImageDelivery, image_source_key
from portal import throttle

logger = logging.getLogger(__name__)

ByteProgress = Callable[[int, int | None], None]
_PROGRESS_EVERY_SECONDS = 1.0
_WAIT_SECONDS = 0.5


def usable_image(version: ApplianceVersion) -> CachedImage | None:
    """The stored bytes ``version`` may use now; None until its own URL has delivered them (or after eviction)."""
    delivered = ImageDelivery.objects.filter(
        version=version, source=image_source_key(version.image_url), status=ImageDelivery.Status.DELIVERED
    ).exists()
    if not delivered:
        return None
    image = CachedImage.objects.get(pk=version.image_id)
    if image.status != CachedImage.Status.READY:
        return None
    if not Path(image.path).is_file():
        # Removed behind the cache's back: the next download stores it again.
        CachedImage.objects.filter(pk=image.pk, path=image.path).update(
            status=CachedImage.Status.MISSING, path="", size_bytes=0
        )
        return None
    return image


def use_image(version: ApplianceVersion) -> CachedImage | None:
    """``usable_image``, marked as just used (the least recently used images are evicted first)."""
    image = usable_image(version)
    if image is not None:
        image.last_used_at = timezone.now()
        CachedImage.objects.filter(pk=image.pk).update(last_used_at=image.last_used_at)
    return image


def _new_attempt(status: str, *, source: str, now: datetime) -> dict[str, object]:
    """A delivery's fields as a new attempt at ``source`` leaves them: nothing done, nothing reserved."""
    return {
        "status": status,
        "source": source,
        "error": "",
        "bytes_done": 0,
        "bytes_total": 0,
        "reserved_bytes": 0,
        "finished_at": None,
        "updated_at": now,
    }


def image_request(*, version: ApplianceVersion) -> bool:
    """Ask for ``version``'s own download; True when the caller is to queue it (none is queued or running)."""
    if usable_image(version) is not None:
        return False
    now = timezone.now()
    source = image_source_key(version.image_url)
    delivery, created = ImageDelivery.objects.get_or_create(
        version=version, defaults={"source": source, "requested_at": now, "updated_at": now}
    )
    if created:
        return True
    # A request whose task never started within a task's lifetime was lost with its broker: ask again.
    busy = Q(status=ImageDelivery.Status.DOWNLOADING, updated_at__gte=now - STALE_DOWNLOAD) | Q(
        status=ImageDelivery.Status.QUEUED,
        requested_at__gte=now - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS),
    )
    return bool(
        ImageDelivery.objects.filter(pk=delivery.pk)
        .exclude(busy & Q(source=source))
        .update(**_new_attempt(ImageDelivery.Status.QUEUED, source=source, now=now), requested_at=now, started_at=None)
    )


def image_download(*, version: ApplianceVersion, progress: ByteProgress | None = None) -> ImageDelivery:
    """Download ``version``'s image from its own URL, unless that is done or under way; return how it stands.

    A bad image or server does not raise: the delivery records the error, for the builds waiting on it.
    """
    claim = _claim(version)
    if claim is not None:
        return _download(version=version, delivery=claim, progress=progress)
    return ImageDelivery.objects.get(version=version)


def image_ensure_cached(*, version: ApplianceVersion, progress: ByteProgress | None = None) -> CachedImage:
    """The image ``version`` may use, downloaded here if need be (or waited for); CatalogError if it cannot be had."""
    while True:
        image = use_image(version)
        if image is not None:
            return image
        claim = _claim(version)
        if claim is None:
            time.sleep(_WAIT_SECONDS)  # another worker downloads this version's image
            continue
        outcome = _download(version=version, delivery=claim, progress=progress)
        if outcome.status == ImageDelivery.Status.ERROR:
            raise CatalogError(outcome.error)


def _claim(version: ApplianceVersion) -> ImageDelivery | None:
    """Take ``version``'s download, unless it is delivered already or a live download of its URL runs."""
    now = timezone.now()
    source = image_source_key(version.image_url)
    delivery, _ = ImageDelivery.objects.get_or_create(
        version=version, defaults={"source": source, "requested_at": now, "updated_at": now}
    )
    claimed = (
        ImageDelivery.objects.filter(pk=delivery.pk)
        .exclude(status=ImageDelivery.Status.DOWNLOADING, source=source, updated_at__gte=now - STALE_DOWNLOAD)
        .exclude(status=ImageDelivery.Status.DELIVERED, source=source, version__image__status=CachedImage.Status.READY)
        .update(**_new_attempt(ImageDelivery.Status.DOWNLOADING, source=source, now=now), started_at=now)
    )
    if not claimed:
        return None
    delivery.refresh_from_db()
    return delivery


def _download(*, version: ApplianceVersion, delivery: ImageDelivery, progress: ByteProgress | None) -> ImageDelivery:
    image = CachedImage.objects.get(pk=version.image_id)
    cache_dir = Path(settings.IMAGE_CACHE_DIR)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sweep_dead_partials(cache_dir)
    stem = f"{image.sha256}-{image.source_format}"  # content and format, like the row's key
    token = uuid.uuid4().hex[:12]  # downloads of one image for several versions may run side by side
    partial = cache_dir / f".{stem}.{token}.download"
    converted = cache_dir / f".{stem}.{token}.qcow2"
    # Ours until someone takes over a claim we stopped touching: then our writes go nowhere.
    ours = ImageDelivery.objects.filter(
        pk=delivery.pk, status=ImageDelivery.Status.DOWNLOADING, started_at=delivery.started_at
    )

    def record(done: int, total: int) -> None:
        # Also the claim's heartbeat: waiting workers see the download is alive.
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
        ours.update(bytes_done=result.size_bytes, bytes_total=result.size_bytes, updated_at=timezone.now())
        _store(image=image, version=version, partial=partial, converted=converted, claim=ours)
    except (FetchError, ImageError, CatalogError, OSError) as exc:
        failure = CatalogError(f"image for {version}: {exc}")
        ours.update(
            status=ImageDelivery.Status.ERROR,
            error=failure.detail,
            reserved_bytes=0,
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        logger.info("image download for version %s failed: %s", version.pk, failure.detail)
    finally:
        partial.unlink(missing_ok=True)
        converted.unlink(missing_ok=True)
    delivery.refresh_from_db()
    return delivery


def _store(
    *, image: CachedImage, version: ApplianceVersion, partial: Path, converted: Path, claim: QuerySet[ImageDelivery]
) -> None:
    """Keep the verified download: inspected and converted, unless these bytes are stored already."""
    final = converted.parent / f"{image.sha256}-{image.source_format}.qcow2"
    stored = CachedImage.objects.get(pk=image.pk)
    if stored.status == CachedImage.Status.READY and Path(stored.path).is_file():
        # Another version brought these bytes; ours only proved that this version's URL delivers them.
        _check_declared_size(version, stored.virtual_size_bytes)
        _publish(image=image, claim=claim, converted=None, final=final, facts=None)
        return
    claim.update(updated_at=timezone.now())  # inspecting and converting report no progress of their own
    facts = inspect_image(
        partial,
        declared_format=image.source_format,
        max_virtual_bytes=settings.IMAGE_MAX_VIRTUAL_BYTES,
        max_converted_bytes=settings.IMAGE_MAX_CONVERTED_BYTES,
    )
    _check_declared_size(version, facts.virtual_size_bytes)
    make_room(image=image, needed=facts.converted_bytes, reserve=claim)
    # The measurement is what qemu-img will write; the file-size limit holds it to that (plus slack).
    limit = min(settings.IMAGE_MAX_CONVERTED_BYTES, facts.converted_bytes + facts.converted_bytes // 8 + 2**26)
    convert_to_qcow2(partial, source_format=image.source_format, destination=converted, max_bytes=limit)
    partial.unlink()
    _publish(image=image, claim=claim, converted=converted, final=final, facts=facts)


def _check_declared_size(version: ApplianceVersion, virtual_size_bytes: int) -> None:
    # Launches claimed the declared size before anything was downloaded; a larger disk would not fit the claim.
    declared = version.declared_virtual_bytes
    if declared and virtual_size_bytes > declared:
        raise CatalogError(
            f"the image's virtual size is {virtual_size_bytes} bytes, more than the {declared} its feed declares"
        )


def _publish(
    *,
    image: CachedImage,
    claim: QuerySet[ImageDelivery],
    converted: Path | None,
    final: Path,
    facts: ImageFacts | None,
) -> None:
    """Mark the version delivered, storing the converted file first unless the bytes are stored already."""
    now = timezone.now()
    with transaction.atomic():
        row = CachedImage.objects.select_for_update().get(pk=image.pk)
        if row.status != CachedImage.Status.READY or not Path(row.path).is_file():
            if converted is None or facts is None:
                raise CatalogError("the stored copy of the image was evicted while it was checked; try again")
            converted.replace(final)
            CachedImage.objects.filter(pk=row.pk).update(
                status=CachedImage.Status.READY,
                path=str(final),
                size_bytes=final.stat().st_size,
                virtual_size_bytes=facts.virtual_size_bytes,
                last_used_at=now,
            )
        claim.update(
            status=ImageDelivery.Status.DELIVERED,
            error="",
            reserved_bytes=0,
            finished_at=now,
            updated_at=now,
        )

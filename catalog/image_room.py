"""Room in the image cache: evict what no instance needs, reserve what a download will write.

The cache holds at most ``IMAGE_CACHE_MAX_BYTES``: the stored images plus what the downloads
under way reserved for their conversion. Both are counted under row locks, so two downloads
cannot both take the last free space.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from catalog import selectors
from catalog.errors import CatalogError
from catalog.images import QEMU_IMG_WALL_SECONDS
from catalog.models import CachedImage, ImageDelivery
from catalog.packages.scratch import sweep_dead_scratch

logger = logging.getLogger(__name__)

# A download claim its worker has not touched for this long is dead: it reserves nothing and may be taken over.
# Longer than one qemu-img run may take (inspecting and converting report no progress), with room to spare.
STALE_DOWNLOAD = timedelta(seconds=QEMU_IMG_WALL_SECONDS + 300)


def live_downloads() -> QuerySet[ImageDelivery]:
    return ImageDelivery.objects.filter(
        status=ImageDelivery.Status.DOWNLOADING, updated_at__gte=timezone.now() - STALE_DOWNLOAD
    )


def make_room(*, image: CachedImage, needed: int, reserve: QuerySet[ImageDelivery]) -> None:
    """Evict least recently used images no instance needs until ``needed`` more bytes fit; ``reserve`` then holds them.

    ``reserve`` is the caller's own download claim. Every live download is locked along with every
    stored image (ours among them, in one order), so concurrent callers take turns and each sees
    what the others reserved.
    """
    cap = settings.IMAGE_CACHE_MAX_BYTES
    with transaction.atomic():
        stored = list(
            CachedImage.objects.select_for_update()
            .filter(status=CachedImage.Status.READY)
            .exclude(pk=image.pk)
            .order_by("pk")
        )
        ours = set(reserve.values_list("pk", flat=True))
        downloading = list(live_downloads().select_for_update().order_by("pk"))
        used = sum(row.size_bytes for row in stored) + sum(
            row.reserved_bytes for row in downloading if row.pk not in ours
        )
        if used + needed > cap:
            used = _evict(stored, used=used, needed=needed, cap=cap)
        reserve.update(reserved_bytes=needed, updated_at=timezone.now())


def _evict(stored: list[CachedImage], *, used: int, needed: int, cap: int) -> int:
    in_use = set(selectors.cached_images_in_use().values_list("pk", flat=True))
    unused = [row for row in stored if row.pk not in in_use]
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
        status=CachedImage.Status.MISSING, path="", size_bytes=0
    )
    for row in evict:
        # Deleted at once: should this transaction roll back, a ready row without its file is
        # downloaded again on next use.
        if row.path:
            Path(row.path).unlink(missing_ok=True)
        logger.info("image cache: evicted %s (%s bytes) to make room", row, row.size_bytes)
    return used


def sweep_dead_partials(cache_dir: Path) -> None:
    """Remove what downloads killed mid-way left: no task outlives the task timeout, so older ones are dead."""
    sweep_dead_scratch(cache_dir, older_than_seconds=settings.TASK_TIMEOUT_SECONDS)
    dead_before = time.time() - settings.TASK_TIMEOUT_SECONDS
    for leftover in cache_dir.glob(".*"):
        try:
            if leftover.suffix in (".download", ".qcow2") and leftover.stat().st_mtime < dead_before:
                leftover.unlink()
        except OSError:
            continue  # gone already, or not ours to remove

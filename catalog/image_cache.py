"""The image cache: each image's bytes stored once, and which versions may use them.

Bytes are stored once per content and format (``CachedImage``). A version may use them
only after its own URL delivered bytes with that sha256 to this portal (its ``ImageDelivery``):
a feed that merely names the sha256 of an image another project cached gets nothing from that
cache, and its version's status says nothing about it. A version whose bytes are stored already
still downloads from its own URL once, to prove the URL delivers them; those bytes are verified
and dropped, not stored again.

Where the version's checksum comes from decides what its bytes must be: the sha256 its feed gives,
or, for a feed that gives none, the sha256 of its first delivered download (pinned: later downloads,
after an eviction or a changed URL, must bring the same bytes). A disk's format is what its header
shows, and must agree with what the feed declared, if it declared one. A package (.xvm2, OVA) is
taken apart when downloaded (``catalog.packages``); its bytes are stored as the qcow2 of the disk
inside, under the package's sha256 and kind, and its sizing raises the version's minimums.

Each version has at most one download at a time, however many launches wait for it. Downloads
run in tasks of their own (``provisioning.tasks.download_image``), each with a task's whole time
budget; ``image_ensure_cached`` is the same work done here and now, for set-up commands.
"""

from __future__ import annotations

import logging
import time
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
from catalog.images import ImageError, ImageFacts, convert_to_qcow2, inspect_image, settle_disk_format
from catalog.models import ApplianceVersion, CachedImage, ImageDelivery, image_source_key
from catalog.packages import PackageError, Sizing, UnpackedPackage, scratch_folder, unpack_package
from portal import throttle

logger = logging.getLogger(__name__)

ByteProgress = Callable[[int, int | None], None]
_PROGRESS_EVERY_SECONDS = 1.0
_WAIT_SECONDS = 0.5


def usable_image(version: ApplianceVersion) -> CachedImage | None:
    """The stored bytes ``version`` may use now; None until its own URL has delivered them (or after eviction)."""
    # The image as the database has it: a version pinned on first download learns it when delivered,
    # maybe by another worker, after ``version`` was read.
    image_id = (
        ImageDelivery.objects.filter(
            version=version, source=image_source_key(version.image_url), status=ImageDelivery.Status.DELIVERED
        )
        .values_list("version__image_id", flat=True)
        .first()
    )
    if image_id is None:
        return None
    image = CachedImage.objects.get(pk=image_id)
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
    cache_dir = Path(settings.IMAGE_CACHE_DIR)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sweep_dead_partials(cache_dir)
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
        # Everything this download writes lives in its scratch folder, removed however it ends;
        # only the finished qcow2 is moved out of it, into the cache.
        with scratch_folder(cache_dir) as scratch:
            partial = scratch / "download"
            result = fetch_to_file(
                version.image_url,
                partial,
                policy=FetchPolicy.for_images(),
                max_bytes=settings.IMAGE_MAX_BYTES,
                progress=report,
            )
            ours.update(bytes_done=result.size_bytes, bytes_total=result.size_bytes, updated_at=timezone.now())
            _store(version=version, partial=partial, scratch=scratch, sha256=result.sha256, claim=ours)
    except (FetchError, ImageError, PackageError, CatalogError, OSError) as exc:
        failure = CatalogError(f"image for {version}: {exc}")
        ours.update(
            status=ImageDelivery.Status.ERROR,
            error=failure.detail,
            reserved_bytes=0,
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        logger.info("image download for version %s failed: %s", version.pk, failure.detail)
    delivery.refresh_from_db()
    return delivery


def _known_image(version: ApplianceVersion, sha256: str) -> CachedImage | None:
    """The image row the version names already, once the download's bytes are shown to be its bytes.

    None for a version whose checksum is pinned on first download and has not been yet.
    """
    known = CachedImage.objects.filter(pk=version.image_id).first() if version.image_id else None
    if known is None:
        if version.checksum_source != ApplianceVersion.ChecksumSource.PINNED:
            raise CatalogError("the version has no checksum to check its image against")
        return None
    if known.sha256 != sha256:
        raise CatalogError(_changed_bytes(version, expected=known.sha256, got=sha256))
    return known


def _changed_bytes(version: ApplianceVersion, *, expected: str, got: str) -> str:
    if version.checksum_source == ApplianceVersion.ChecksumSource.PINNED:
        return (
            f"the image's bytes changed since they were pinned on first download "
            f"(sha256 {expected} then, {got} now); publish a new version"
        )
    return f"sha256 mismatch: the feed promised {expected}, the download is {got}"


def _store(
    *, version: ApplianceVersion, partial: Path, scratch: Path, sha256: str, claim: QuerySet[ImageDelivery]
) -> None:
    """Keep the verified download: inspected and converted (a package taken apart first), unless stored already.

    The bytes are stored under their sha256 and the format their header shows (a package's kind
    for a package): a version pinned on first download, or whose feed declared no format, learns
    its image row here, and takes it when it is delivered.
    """
    known = _known_image(version, sha256)
    claim.update(updated_at=timezone.now())  # unpacking, inspecting and converting report no progress of their own
    package = version.package
    disk_format = ""  # a package's is known once its disk is taken out
    if package == ApplianceVersion.Package.DISK:
        declared = version.disk_format or (known.source_format if known is not None else "")
        disk_format = settle_disk_format(partial, declared=declared)
        key_format = disk_format
    else:
        key_format = package
    image, _ = CachedImage.objects.get_or_create(sha256=sha256, source_format=key_format)
    stored = image.status == CachedImage.Status.READY and Path(image.path).is_file()
    sizing = Sizing()
    if package != ApplianceVersion.Package.DISK:
        unpacked = _unpack(version=version, partial=partial, scratch=scratch, extract=not stored, claim=claim)
        sizing = unpacked.sizing
        if unpacked.disk is not None:
            partial.unlink()  # the disk taken out of it is what is converted; the room is the cache's
            partial, disk_format = unpacked.disk, unpacked.disk_format
    final = Path(settings.IMAGE_CACHE_DIR) / f"{sha256}-{key_format}.qcow2"
    if stored:
        # Another version brought these bytes; ours only proved that this version's URL delivers them.
        _check_declared_size(version, image.virtual_size_bytes)
        _publish(version=version, image=image, claim=claim, converted=None, final=final, facts=None, sizing=sizing)
        return
    facts = inspect_image(
        partial,
        declared_format=disk_format,
        max_virtual_bytes=settings.IMAGE_MAX_VIRTUAL_BYTES,
        max_converted_bytes=settings.IMAGE_MAX_CONVERTED_BYTES,
    )
    _check_declared_size(version, facts.virtual_size_bytes)
    make_room(image=image, needed=facts.converted_bytes, reserve=claim)
    # The measurement is what qemu-img will write; the file-size limit holds it to that (plus slack).
    limit = min(settings.IMAGE_MAX_CONVERTED_BYTES, facts.converted_bytes + facts.converted_bytes // 8 + 2**26)
    converted = scratch / "converted.qcow2"
    convert_to_qcow2(partial, source_format=disk_format, destination=converted, max_bytes=limit)
    partial.unlink()
    _publish(version=version, image=image, claim=claim, converted=converted, final=final, facts=facts, sizing=sizing)


def _unpack(
    *, version: ApplianceVersion, partial: Path, scratch: Path, extract: bool, claim: QuerySet[ImageDelivery]
) -> UnpackedPackage:
    def touch(_done: int, _total: int) -> None:
        claim.update(updated_at=timezone.now())

    heartbeat = throttle.every(_PROGRESS_EVERY_SECONDS, touch)
    unpacked = unpack_package(
        partial,
        package=version.package,
        scratch=scratch,
        extract=extract,
        max_bytes=settings.IMAGE_MAX_BYTES,
        feed_disk_format=version.disk_format,
        tick=lambda: heartbeat(0, 1),
    )
    if unpacked.ignored:
        logger.info(
            "image for version %s: left out of its %s package: %s",
            version.pk,
            version.package,
            ", ".join(unpacked.ignored),
        )
    return unpacked


def _check_declared_size(version: ApplianceVersion, virtual_size_bytes: int) -> None:
    # Launches claimed the declared size before anything was downloaded; a larger disk would not fit the claim.
    declared = version.declared_virtual_bytes
    if declared and virtual_size_bytes > declared:
        raise CatalogError(
            f"the image's virtual size is {virtual_size_bytes} bytes, more than the {declared} its feed declares"
        )


def _publish(
    *,
    version: ApplianceVersion,
    image: CachedImage,
    claim: QuerySet[ImageDelivery],
    converted: Path | None,
    final: Path,
    facts: ImageFacts | None,
    sizing: Sizing,
) -> None:
    """Mark the version delivered, storing the converted file first unless the bytes are stored already.

    The version's row is locked first: a version pinned on first download takes its image here, and
    a second download of it (one that took over a claim it thought dead) must find the same bytes.
    Then the image row and the claim, in the order ``make_room`` locks them.
    """
    now = timezone.now()
    with transaction.atomic():
        row = ApplianceVersion.objects.select_for_update().get(pk=version.pk)
        if row.image_id is not None and row.image_id != image.pk:
            # Another row for the same bytes is only another format key (the feed's undeclared one);
            # other bytes are a pin (or a feed's checksum) this download does not match.
            current = CachedImage.objects.get(pk=row.image_id)
            if current.sha256 != image.sha256:
                raise CatalogError(_changed_bytes(row, expected=current.sha256, got=image.sha256))
        stored = CachedImage.objects.select_for_update().get(pk=image.pk)
        if not list(claim.select_for_update().values_list("pk", flat=True)):
            return  # another download took this one over; it speaks for the version now
        if stored.status != CachedImage.Status.READY or not Path(stored.path).is_file():
            if converted is None or facts is None:
                raise CatalogError("the stored copy of the image was evicted while it was checked; try again")
            converted.replace(final)
            CachedImage.objects.filter(pk=stored.pk).update(
                status=CachedImage.Status.READY,
                path=str(final),
                size_bytes=final.stat().st_size,
                virtual_size_bytes=facts.virtual_size_bytes,
                last_used_at=now,
            )
        ApplianceVersion.objects.filter(pk=row.pk).update(image=image, **_sizing_fields(row, sizing))
        claim.update(
            status=ImageDelivery.Status.DELIVERED,
            error="",
            reserved_bytes=0,
            finished_at=now,
            updated_at=now,
        )


def _sizing_fields(version: ApplianceVersion, sizing: Sizing) -> dict[str, int]:
    """What a package's descriptor asks for raises the version's minimums (never lowers what its feed said)."""
    fields = {}
    if sizing.vcpus and sizing.vcpus > version.min_vcpus:
        fields["min_vcpus"] = sizing.vcpus
    if sizing.ram_mib and sizing.ram_mib > version.min_ram_mib:
        fields["min_ram_mib"] = sizing.ram_mib
    return fields

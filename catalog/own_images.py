"""A project's own catalog: images its members uploaded and stacks they captured.

They live in a feed of format ``local`` (one per project, no URL: nothing fetches it). A file
becomes a version through the same inspection and conversion as a downloaded image; its bytes are
kept in the image cache and never evicted, since no URL could bring them back. Until the version
is delivered it shows as downloading; a refused file leaves no version behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.image_room import make_room
from catalog.images import ImageError, convert_to_qcow2, inspect_image, sniff_format
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed, ImageDelivery, image_source_key
from portal.models import Project

# What a file brought by a member may be (the header decides; the same list feeds may declare).
OWN_DISK_FORMATS = ("qcow2", "raw", "vmdk", "vdi", "vhdx")
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class OwnVersion:
    """What a new version of the project's own catalog is called and needs."""

    appliance: str
    version: str
    title: str = ""
    description: str = ""
    role: str = ""
    min_ram_mib: int = 128
    min_vcpus: int = 1
    service_port: int | None = None
    checksum_source: str = ApplianceVersion.ChecksumSource.UPLOAD


def own_catalog(project: Project) -> Feed:
    """The project's own feed, made on first use."""
    feed, _ = Feed.objects.get_or_create(
        project=project,
        url="",
        defaults={"format": Feed.Format.LOCAL, "title": f"{project.name}: own images", "last_status": "ok"},
    )
    return feed


def file_sha256(path: Path, *, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done)
    return digest.hexdigest()


def own_version_add(*, project: Project, spec: OwnVersion, source: Path) -> ApplianceVersion:
    """Check ``source`` like a downloaded image, keep it converted, and list it in ``project``'s own catalog.

    Raises ``CatalogError`` (saying why) when the file is unusable or the name is taken; then
    nothing is left in the catalog. ``source`` itself is the caller's to remove.
    """
    disk_format = sniff_format(source)
    if disk_format not in OWN_DISK_FORMATS:
        raise CatalogError(f"the file is a {disk_format} image; the portal takes {', '.join(OWN_DISK_FORMATS)}")
    sha256 = file_sha256(source)
    version = _claim_name(
        project=project, spec=spec, sha256=sha256, disk_format=disk_format, size=source.stat().st_size
    )
    claim = ImageDelivery.objects.filter(version=version)
    try:
        _store(version=version, source=source, disk_format=disk_format, claim=claim)
    except (ImageError, CatalogError, OSError) as exc:
        ApplianceVersion.objects.filter(pk=version.pk).delete()
        Appliance.objects.filter(pk=version.appliance_id, versions__isnull=True).delete()
        raise CatalogError(str(exc)) from None
    version.refresh_from_db()
    return version


def _claim_name(*, project: Project, spec: OwnVersion, sha256: str, disk_format: str, size: int) -> ApplianceVersion:
    feed = own_catalog(project)
    now = timezone.now()
    try:
        with transaction.atomic():
            appliance, _ = Appliance.objects.get_or_create(
                feed=feed,
                identifier=spec.appliance,
                defaults={"title": spec.title or spec.appliance, "description": spec.description, "role": spec.role},
            )
            image, _ = CachedImage.objects.get_or_create(sha256=sha256, source_format=disk_format)
            version = ApplianceVersion.objects.create(
                appliance=appliance,
                version=spec.version,
                image_url="",
                size_bytes=size,
                disk_format=disk_format,
                min_ram_mib=spec.min_ram_mib,
                min_vcpus=spec.min_vcpus,
                service_port=spec.service_port,
                published_at=now,
                image=image,
                checksum_source=spec.checksum_source,
            )
            ImageDelivery.objects.create(
                version=version,
                source=image_source_key(""),
                status=ImageDelivery.Status.DOWNLOADING,
                bytes_done=size,
                bytes_total=size,
                requested_at=now,
                started_at=now,
            )
    except IntegrityError:
        raise CatalogError(
            f"appliance '{spec.appliance}' already has a version '{spec.version}' in this project's catalog"
        ) from None
    return version


def _store(*, version: ApplianceVersion, source: Path, disk_format: str, claim: QuerySet[ImageDelivery]) -> None:
    image = CachedImage.objects.get(versions=version)  # set when the name was claimed
    final = Path(settings.IMAGE_CACHE_DIR) / f"{image.sha256}-{image.source_format}.qcow2"
    if image.status == CachedImage.Status.READY and Path(image.path).is_file():
        _deliver(claim)  # these bytes are kept already
        return
    facts = inspect_image(
        source,
        declared_format=disk_format,
        max_virtual_bytes=settings.IMAGE_MAX_VIRTUAL_BYTES,
        max_converted_bytes=settings.IMAGE_MAX_CONVERTED_BYTES,
    )
    make_room(image=image, needed=facts.converted_bytes, reserve=claim)
    final.parent.mkdir(parents=True, exist_ok=True)
    converted = final.parent / f".{final.name}.{version.pk}.own"
    limit = min(settings.IMAGE_MAX_CONVERTED_BYTES, facts.converted_bytes + facts.converted_bytes // 8 + 2**26)
    try:
        convert_to_qcow2(source, source_format=disk_format, destination=converted, max_bytes=limit)
        with transaction.atomic():
            row = CachedImage.objects.select_for_update().get(pk=image.pk)
            if row.status != CachedImage.Status.READY or not Path(row.path).is_file():
                converted.replace(final)
                CachedImage.objects.filter(pk=row.pk).update(
                    status=CachedImage.Status.READY,
                    path=str(final),
                    size_bytes=final.stat().st_size,
                    virtual_size_bytes=facts.virtual_size_bytes,
                    last_used_at=timezone.now(),
                )
            _deliver(claim)
    finally:
        converted.unlink(missing_ok=True)


def _deliver(claim: QuerySet[ImageDelivery]) -> None:
    now = timezone.now()
    claim.update(status=ImageDelivery.Status.DELIVERED, error="", reserved_bytes=0, finished_at=now, updated_at=now)


__all__ = ["OWN_DISK_FORMATS", "OwnVersion", "file_sha256", "own_catalog", "own_version_add"]

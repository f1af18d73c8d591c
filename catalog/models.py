"""The appliance catalog: VMcast feeds, the appliances they publish, and the local image cache."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Self

from django.conf import settings
from django.db import models
from django.utils import timezone

from catalog.redaction import redact_url
from portal.models import Project
from portal.querysets import ProjectScopedQuerySet


class FeedQuerySet(ProjectScopedQuerySet["Feed"]):
    # A feed without a project is the operators' shared catalog, which every project reads.
    project_path = "project"
    unowned_is_shared = True


class ApplianceQuerySet(ProjectScopedQuerySet["Appliance"]):
    project_path = "feed__project"
    unowned_is_shared = True


class ApplianceVersionQuerySet(ProjectScopedQuerySet["ApplianceVersion"]):
    project_path = "appliance__feed__project"
    unowned_is_shared = True

    def newest_first(self) -> Self:
        """Current versions before withdrawn ones, each newest first: what a launch should take."""
        return self.order_by("withdrawn", "-published_at", "-id")


class Feed(models.Model):
    """A VMcast subscription. ``project`` empty means the operator-run catalog every project sees.

    A project's own catalog (its uploads and captured stacks) is a feed too, of format ``local``,
    with no URL: nothing fetches it, and the project's VMcast serves it to others.
    """

    class Format(models.TextChoices):
        UNKNOWN = "", "Not yet read"
        VMCAST = "vmcast", "VMcast"
        ARCHIPEL = "archipel", "Archipel VMcast"
        SIMPLESTREAMS = "simplestreams", "simplestreams"
        LOCAL = "local", "The project's own images"

    class ImportStatus(models.TextChoices):
        NEVER = "never", "Never imported"
        QUEUED = "queued", "Queued"
        IMPORTING = "importing", "Importing"
        OK = "ok", "OK"
        ERROR = "error", "Error"

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="feeds")
    url = models.URLField(max_length=1000, blank=True, verbose_name="URL")
    title = models.CharField(max_length=200, blank=True)
    # What the URL answered, detected at each import (the API's ``format``).
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.UNKNOWN, blank=True)
    # The validators of the last accepted answer, sent back as If-None-Match / If-Modified-Since:
    # an unchanged feed then costs one 304 and no parsing.
    etag = models.CharField(
        max_length=300,
        blank=True,
        verbose_name="ETag",
        help_text="The server's ETag at the last import, sent back to skip an unchanged feed",
    )
    last_modified = models.CharField(max_length=100, blank=True, verbose_name="last modified (as the server said)")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, verbose_name="subscribed by"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="subscribed")
    last_import_at = models.DateTimeField(null=True, blank=True, verbose_name="last imported")
    # When it was last queued or started: an import "queued" or "importing" for longer than a task
    # may run lost its worker, and the watchdog says so.
    status_changed_at = models.DateTimeField(null=True, blank=True, verbose_name="status changed")
    last_status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.NEVER, verbose_name="status"
    )
    last_error = models.TextField(blank=True)
    last_item_count = models.PositiveIntegerField(default=0, verbose_name="items in the last import")

    objects = FeedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "url"], name="one_subscription_per_url", nulls_distinct=False)
        ]
        ordering = ["title", "url"]

    def __str__(self) -> str:
        return self.title or self.display_url

    @property
    def display_url(self) -> str:
        """The URL as shown and logged: credentials in it are for the fetcher only."""
        return redact_url(self.url)


class Appliance(models.Model):
    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="appliances")
    identifier = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    role = models.CharField(max_length=30, blank=True)

    objects = ApplianceQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "identifier"], name="unique_appliance_per_feed")]
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


def image_source_key(url: str) -> str:
    """What identifies the URL an image came from: a digest, so no row holds a second copy of its credentials."""
    return hashlib.sha256(url.encode()).hexdigest()


class CachedImage(models.Model):
    """The bytes of one image, verified, inspected and converted to qcow2, stored once.

    Keyed by the sha256 the feed promised *and* the format it declared: a feed declaring known
    bytes as another format gets a row of its own, so what one project's feed says never changes
    the image another project's versions use. (Content passes the magic-bytes check for one format
    only, so at most one of those rows ever becomes ready.)

    Which versions may use the bytes is not decided here: naming a sha256 proves nothing, so each
    version needs its own :class:`ImageDelivery`.
    """

    class Status(models.TextChoices):
        MISSING = "missing", "Not downloaded"
        READY = "ready", "Ready"

    sha256 = models.CharField(max_length=64, verbose_name="SHA-256")
    source_format = models.CharField(max_length=10)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.MISSING)
    path = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0, verbose_name="file size (bytes)")
    virtual_size_bytes = models.BigIntegerField(
        default=0, verbose_name="disk size (bytes)", help_text="The size the guest sees"
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name="last changed")
    # When a launch last asked for it: the least recently used images are evicted first.
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name="last used")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sha256", "source_format"], name="one_cached_image_per_content_and_format")
        ]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.source_format} ({self.status})"


@dataclass(frozen=True)
class ImageState:
    """What a version's own launches can count on, from its own download only."""

    status: str  # one of ApplianceVersion.ImageStatus
    label: str
    bytes_done: int = 0
    bytes_total: int = 0
    error: str = ""


class ApplianceVersion(models.Model):
    class ChecksumSource(models.TextChoices):
        FEED = "feed", "Verified against the feed"
        PINNED = "pinned", "Pinned on first download"
        UPLOAD = "upload", "Uploaded"

    class Package(models.TextChoices):
        DISK = "disk", "Disk image"
        XVM2 = "xvm2", "Archipel package (.xvm2)"
        OVA = "ova", "OVA"

    class ImageStatus(models.TextChoices):
        MISSING = "missing", "Not downloaded"
        DOWNLOADING = "downloading", "Downloading"
        READY = "ready", "Ready"
        ERROR = "error", "Error"

    appliance = models.ForeignKey(Appliance, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=50)
    image_url = models.URLField(max_length=1000, verbose_name="image URL")
    size_bytes = models.BigIntegerField(verbose_name="image size (bytes)")
    media_type = models.CharField(max_length=100, blank=True)
    disk_format = models.CharField(max_length=10)
    arch = models.CharField(max_length=20, default="x86_64", verbose_name="architecture")
    min_ram_mib = models.PositiveIntegerField(default=128, verbose_name="least memory (MiB)")
    min_vcpus = models.PositiveIntegerField(default=1, verbose_name="least virtual CPUs")
    service_port = models.PositiveIntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True, verbose_name="published")
    # The disk size the feed declares (vmc:virtualsize): launches claim it before the image is
    # downloaded, and an image larger than it is refused. Empty when the feed does not say.
    declared_virtual_bytes = models.BigIntegerField(null=True, blank=True, verbose_name="declared disk size (bytes)")
    # Empty while the bytes are unknown: a feed that gives no checksum (pinned on first download).
    image = models.ForeignKey(
        CachedImage,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="versions",
        verbose_name="cached image",
    )
    checksum_source = models.CharField(max_length=8, choices=ChecksumSource.choices, default=ChecksumSource.FEED)
    # What the URL delivers: a disk image, or a package holding one (taken apart when first fetched).
    package = models.CharField(max_length=8, choices=Package.choices, default=Package.DISK)
    # Gone from its feed: stacks built from it keep running, new launches prefer current versions.
    withdrawn = models.BooleanField(default=False)

    objects = ApplianceVersionQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["appliance", "version"], name="unique_version")]
        ordering = ["appliance__title", "-published_at"]

    def __str__(self) -> str:
        return f"{self.appliance.title} {self.version}"

    @property
    def display_image_url(self) -> str:
        return redact_url(self.image_url)

    @cached_property
    def image_state(self) -> ImageState:
        """This version's image as its own download left it; another's copy of the same bytes counts for nothing."""
        status = self.ImageStatus
        delivery: ImageDelivery | None = getattr(self, "delivery", None)  # absent until its first download
        if delivery is None or delivery.source != image_source_key(self.image_url):
            return ImageState(status=status.MISSING, label=status.MISSING.label)
        if delivery.status == ImageDelivery.Status.DELIVERED:
            # Delivered once, but the bytes may have been evicted since: then they are downloaded again.
            ready = self.image is not None and self.image.status == CachedImage.Status.READY
            shown = status.READY if ready else status.MISSING
            return ImageState(status=shown, label=shown.label)
        if delivery.status == ImageDelivery.Status.ERROR:
            return ImageState(status=status.ERROR, label=status.ERROR.label, error=delivery.error)
        return ImageState(
            status=status.DOWNLOADING,
            label=status.DOWNLOADING.label,
            bytes_done=delivery.bytes_done,
            bytes_total=delivery.bytes_total,
        )

    @property
    def known_virtual_bytes(self) -> int | None:
        """The image's disk size as far as this version may know it: declared by its feed, or measured
        when its own URL delivered the image. None while neither."""
        if self.declared_virtual_bytes:
            return self.declared_virtual_bytes
        delivery: ImageDelivery | None = getattr(self, "delivery", None)
        delivered = (
            delivery is not None
            and delivery.status == ImageDelivery.Status.DELIVERED
            and delivery.source == image_source_key(self.image_url)
        )
        image = self.image
        return image.virtual_size_bytes if delivered and image is not None and image.virtual_size_bytes else None


class ImageDelivery(models.Model):
    """One version's own download of its image: what lets the version use the cached bytes.

    A version may use a :class:`CachedImage` only once its own URL (``source``) delivered bytes
    with that sha256 to this portal. A feed that merely names the sha256 of an image someone else
    cached gets nothing from that cache. The row is also the download's claim (one download per
    version however many launches wait for it), its progress and its outcome.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        DOWNLOADING = "downloading", "Downloading"
        DELIVERED = "delivered", "Delivered"
        ERROR = "error", "Error"

    version = models.OneToOneField(ApplianceVersion, on_delete=models.CASCADE, related_name="delivery")
    # image_source_key of the URL this row speaks for; a version whose URL changed starts over.
    source = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    bytes_done = models.BigIntegerField(default=0, verbose_name="bytes received")
    bytes_total = models.BigIntegerField(default=0, verbose_name="bytes expected")
    # Cache room this download holds while it converts, so two downloads cannot both take the last of it.
    reserved_bytes = models.BigIntegerField(default=0, verbose_name="space reserved (bytes)")
    requested_at = models.DateTimeField(null=True, blank=True, verbose_name="requested")
    started_at = models.DateTimeField(null=True, blank=True, verbose_name="started")
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name="finished")
    # The download's heartbeat: a claim not touched for a while lost its worker and is taken over.
    updated_at = models.DateTimeField(default=timezone.now, verbose_name="last changed")

    class Meta:
        verbose_name_plural = "image deliveries"

    def __str__(self) -> str:
        return f"{self.version_id}: {self.status}"

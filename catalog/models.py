"""The appliance catalog: VMcast feeds, the appliances they publish, and the local image cache."""

from __future__ import annotations

from typing import Self

from django.conf import settings
from django.db import models

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
        return self.order_by("-published_at", "-id")


class Feed(models.Model):
    """A VMcast subscription. ``project`` empty means the operator-run catalog every project sees."""

    class ImportStatus(models.TextChoices):
        NEVER = "never", "Never imported"
        QUEUED = "queued", "Queued"
        IMPORTING = "importing", "Importing"
        OK = "ok", "OK"
        ERROR = "error", "Error"

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="feeds")
    url = models.URLField(max_length=1000)
    title = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_import_at = models.DateTimeField(null=True, blank=True)
    # When it was last queued or started: an import "queued" or "importing" for longer than a task
    # may run lost its worker, and the watchdog says so.
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.NEVER)
    last_error = models.TextField(blank=True)
    last_item_count = models.PositiveIntegerField(default=0)

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

    def latest_version(self) -> ApplianceVersion | None:
        return self.versions.newest_first().first()


class CachedImage(models.Model):
    """A verified, inspected qcow2 image in the local cache, keyed by content and declared format.

    The key is the sha256 the feed promised *and* the format it declared: a feed declaring known
    bytes as another format gets a row of its own, so what one project's feed says never changes
    the image another project's versions use. (Content passes the magic-bytes check for one format
    only, so at most one of those rows ever becomes ready.)
    """

    class Status(models.TextChoices):
        MISSING = "missing", "Not downloaded"
        DOWNLOADING = "downloading", "Downloading"
        READY = "ready", "Ready"
        ERROR = "error", "Error"

    sha256 = models.CharField(max_length=64)
    source_format = models.CharField(max_length=10)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.MISSING)
    error = models.TextField(blank=True)
    path = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    virtual_size_bytes = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    # When a launch last asked for it: the least recently used images are evicted first.
    last_used_at = models.DateTimeField(null=True, blank=True)
    # sha256 of the URL the current download claim reads from. A launch waits for a claim on its own
    # URL; a download from another URL (perhaps another project's feed) it does not wait for.
    download_source = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sha256", "source_format"], name="one_cached_image_per_content_and_format")
        ]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.source_format} ({self.status})"


class ApplianceVersion(models.Model):
    appliance = models.ForeignKey(Appliance, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=50)
    image_url = models.URLField(max_length=1000)
    size_bytes = models.BigIntegerField()
    media_type = models.CharField(max_length=100, blank=True)
    disk_format = models.CharField(max_length=10)
    arch = models.CharField(max_length=20, default="x86_64")
    min_ram_mib = models.PositiveIntegerField(default=128)
    min_vcpus = models.PositiveIntegerField(default=1)
    service_port = models.PositiveIntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    image = models.ForeignKey(CachedImage, on_delete=models.PROTECT, related_name="versions")

    objects = ApplianceVersionQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["appliance", "version"], name="unique_version")]
        ordering = ["appliance__title", "-published_at"]

    def __str__(self) -> str:
        return f"{self.appliance.title} {self.version}"

    @property
    def display_image_url(self) -> str:
        return redact_url(self.image_url)

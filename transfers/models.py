"""The jobs that move images in and out: an upload, an export, a capture. Each shows its progress
and ends in a final state with a reason; nothing half-made outlives it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from catalog.models import ApplianceVersion
from portal.models import Project


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


FINAL_STATUSES = (JobStatus.READY, JobStatus.FAILED)


class Upload(models.Model):
    """A disk image sent by a user through the tus protocol, then checked like a downloaded image.

    Its bytes land in a file of their own under ``PORTAL_UPLOAD_DIR``; ``offset`` is how many are
    there, which a client resuming after a dropped connection asks for (tus ``HEAD``).
    """

    class Status(models.TextChoices):
        RECEIVING = "receiving", "Receiving"
        PROCESSING = "processing", "Checking and converting"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="ID")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    appliance = models.CharField(max_length=100)
    version = models.CharField(max_length=50)
    title = models.CharField(max_length=200, blank=True)
    filename = models.CharField(max_length=200, blank=True)
    # What the version made of it is told: the port its service listens on (published by a one-click
    # launch) and the tier name such a launch gives it (a tier name, so as long as Appliance.role allows).
    service_port = models.PositiveIntegerField(null=True, blank=True)
    role = models.CharField(max_length=30, blank=True)
    length = models.BigIntegerField(verbose_name="size (bytes)")
    offset = models.BigIntegerField(default=0, verbose_name="bytes received")
    path = models.CharField(max_length=500, blank=True, verbose_name="file on the server")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVING)
    error = models.TextField(blank=True)
    result = models.ForeignKey(ApplianceVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="started")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="last changed")
    expires_at = models.DateTimeField(verbose_name="expires")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.appliance} {self.version} ({self.status})"


class Export(models.Model):
    """One instance's disk as a self-contained image, or a whole stack as an OVA, kept for download."""

    class Format(models.TextChoices):
        QCOW2 = "qcow2", "qcow2"
        RAW = "raw", "raw"
        OVA = "ova", "OVA"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    # What was exported; kept by name once the stack is deleted (the file stays until it expires).
    stack = models.ForeignKey(
        "provisioning.Stack", null=True, blank=True, on_delete=models.SET_NULL, related_name="exports"
    )
    instance = models.ForeignKey(
        "provisioning.Instance", null=True, blank=True, on_delete=models.SET_NULL, related_name="exports"
    )
    source_name = models.CharField(max_length=200)
    format = models.CharField(max_length=8, choices=Format.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    error = models.TextField(blank=True)
    bytes_done = models.BigIntegerField(default=0, verbose_name="bytes written")
    bytes_total = models.BigIntegerField(default=0, verbose_name="bytes to write")
    # What the finished file takes: counted against the project's max_export_gib until it expires.
    size_bytes = models.BigIntegerField(default=0, verbose_name="size (bytes)")
    # Claimed when queued (the disks' virtual size), so parallel exports cannot pass the quota together.
    reserved_bytes = models.BigIntegerField(default=0, verbose_name="space reserved (bytes)")
    sha256 = models.CharField(max_length=64, blank=True, verbose_name="SHA-256")
    path = models.CharField(max_length=500, blank=True, verbose_name="file on the server")
    download_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="requested")
    started_at = models.DateTimeField(null=True, blank=True, verbose_name="started")
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name="finished")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="last changed")
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name="expires")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export of {self.source_name} as {self.format} ({self.status})"


class Capture(models.Model):
    """A stack captured as new appliance versions in its project's own catalog, plus a template."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="captures")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    stack = models.ForeignKey(
        "provisioning.Stack", null=True, blank=True, on_delete=models.SET_NULL, related_name="captures"
    )
    source_name = models.CharField(max_length=200)
    appliance_prefix = models.CharField(max_length=60)
    version = models.CharField(max_length=50)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    error = models.TextField(blank=True)
    bytes_done = models.BigIntegerField(default=0, verbose_name="bytes copied")
    bytes_total = models.BigIntegerField(default=0, verbose_name="bytes to copy")
    template = models.ForeignKey(
        "provisioning.StackTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="requested")
    started_at = models.DateTimeField(null=True, blank=True, verbose_name="started")
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name="finished")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="last changed")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"capture of {self.source_name} ({self.status})"

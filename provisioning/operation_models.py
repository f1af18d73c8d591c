"""Operations on what runs: moving an instance or a stack, evacuating a host, resizing a tier.

One row per operation (re-exported by ``provisioning.models``): the API answers 202 with it, the
job that does the work writes its progress and, at the end, its outcome and what it could not do.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.models import Project
from portal.querysets import ProjectScopedQuerySet


class OperationQuerySet(ProjectScopedQuerySet["Operation"]):
    project_path = "project"


class Operation(models.Model):
    class Kind(models.TextChoices):
        MIGRATE_INSTANCE = "migrate_instance", "Move an instance"
        MIGRATE_STACK = "migrate_stack", "Move a stack"
        EVACUATE_HOST = "evacuate_host", "Evacuate a host"
        RESIZE = "resize", "Resize a tier"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Done"
        PARTIAL = "partial", "Done in part"
        FAILED = "failed", "Failed"

    FINAL_STATES = (State.SUCCEEDED, State.PARTIAL, State.FAILED)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    # The project whose stack it acts on; none for a host's evacuation (operators only).
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="operations")
    stack = models.ForeignKey(
        "provisioning.Stack", null=True, blank=True, on_delete=models.SET_NULL, related_name="operations"
    )
    instance = models.ForeignKey(
        "provisioning.Instance", null=True, blank=True, on_delete=models.SET_NULL, related_name="operations"
    )
    host = models.ForeignKey(
        "provisioning.Host",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operations",
        verbose_name="source host",
    )
    target_host = models.ForeignKey(
        "provisioning.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="incoming_operations"
    )
    request = models.JSONField(default=dict, blank=True, help_text="What was asked, as the API received it")
    progress_percent = models.PositiveSmallIntegerField(default=0, verbose_name="progress (%)")
    detail = models.CharField(max_length=500, blank=True, help_text="What it is doing, or why it ended as it did")
    result = models.JSONField(default=dict, blank=True, help_text="Its outcome: what moved, what could not and why")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="asked")
    started_at = models.DateTimeField(null=True, blank=True, verbose_name="started")
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name="finished")

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "status"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINAL_STATES

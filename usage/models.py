"""Usage records: what one stack held on one day (UTC) and what that cost.

Rows outlive their stack and its creator: the stack's id and name and the creator's username are
copied into the row, and the links to the live rows are cleared when those go. Quantities are
unit-hours (a vCPU held for an hour is 1 vCPU-hour) and every number is a ``Decimal``; the cost is
in ``settings.CURRENCY`` at the prices of the moment each piece was sampled (``usage.pricing``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.models import Project
from portal.querysets import ProjectScopedQuerySet
from provisioning.models import Stack

# Nine decimals: a sample adds a minute's worth (1/60 of a unit-hour), and rounding each addition
# to the nanounit keeps a year of minutes within a thousandth of a unit of the exact sum.
QUANTITY_DIGITS = 20
QUANTITY_PLACES = 9


def _quantity(help_text: str, verbose_name: str | None = None) -> models.DecimalField:
    return models.DecimalField(
        verbose_name, max_digits=QUANTITY_DIGITS, decimal_places=QUANTITY_PLACES, default=0, help_text=help_text
    )


class UsageRecordQuerySet(ProjectScopedQuerySet["UsageRecord"]):
    project_path = "project"


class UsageRecord(models.Model):
    """One stack on one day (UTC): what it held, in unit-hours, and what that cost."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="usage_records")
    stack = models.ForeignKey(Stack, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records")
    # Copies that stay when the stack row (or its creator) is gone: a bill still names them.
    kept_stack_id = models.PositiveBigIntegerField(
        help_text="The stack's id, kept when the stack row is removed", verbose_name="stack ID"
    )
    stack_name = models.CharField(max_length=63)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(
        max_length=150, blank=True, help_text="Who launched the stack", verbose_name="launched by"
    )
    date = models.DateField(help_text="The day (UTC)", verbose_name="day")
    vcpu_hours = _quantity("vCPUs held (not shelved), times hours", verbose_name="virtual CPU hours")
    memory_gib_hours = _quantity("GiB of memory held (not shelved), times hours", verbose_name="memory (GiB hours)")
    disk_gib_hours = _quantity("GiB of instance disks held, times hours", verbose_name="disk (GiB hours)")
    snapshot_gib_hours = _quantity("GiB of snapshot space held, times hours", verbose_name="snapshots (GiB hours)")
    cost = _quantity("In settings.CURRENCY, at the prices when each piece was sampled")
    updated_at = models.DateTimeField(help_text="The sample that last added to the row", verbose_name="last sampled")

    objects = UsageRecordQuerySet.as_manager()

    class Meta:
        ordering = ["date", "stack_name", "kept_stack_id"]
        constraints = [models.UniqueConstraint(fields=["kept_stack_id", "date"], name="one_usage_record_per_stack_day")]
        indexes = [models.Index(fields=["project", "date"], name="usage_by_project_day")]

    def __str__(self) -> str:
        return f"{self.stack_name} on {self.date}"


class UsageCursor(models.Model):
    """How far a stack's usage has been added up: the sampler adds from ``sampled_at`` to its own moment.

    The row is also the sampler's lock on the stack, so two samplers never count a moment twice.
    """

    stack = models.OneToOneField(Stack, on_delete=models.CASCADE, primary_key=True, related_name="usage_cursor")
    sampled_at = models.DateTimeField(null=True, blank=True, help_text="Empty until the first sample")

    def __str__(self) -> str:
        return f"usage of stack {self.stack_id} until {self.sampled_at}"

"""Ending the captures whose worker died: what they made is removed and they say so."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from catalog.models import ApplianceVersion, Feed
from provisioning.models import StackTemplate
from transfers.capture_naming import captured_template_name
from transfers.capture_undo import CaptureMade, mark_failed, undo_made
from transfers.models import Capture, JobStatus


def captures_watchdog(*, now: datetime | None = None) -> int:
    """End the captures whose worker died (no progress for longer than any task may run): what they
    made is removed and they say so. Their stack, left busy, is settled by the stacks' watchdog."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS)
    ended = 0
    for capture in Capture.objects.filter(status=JobStatus.RUNNING, updated_at__lt=cutoff).select_related("project"):
        problems = undo_made(_made_by(capture))
        reason = "the worker making this capture stopped; nothing it made was kept"
        mark_failed(capture, f"{reason}; {problems}" if problems else reason)
        shutil.rmtree(Path(settings.CAPTURE_DIR) / f"capture-{capture.pk}", ignore_errors=True)
        ended += 1
    never = Capture.objects.filter(status=JobStatus.PENDING, created_at__lt=cutoff)
    for capture in never:
        mark_failed(capture, "the capture never started (its task was lost); ask again")
        ended += 1
    return ended


def _made_by(capture: Capture) -> CaptureMade:
    """What a capture whose worker died may have made: its names, made since it started."""
    since = capture.started_at or capture.created_at
    versions = ApplianceVersion.objects.filter(
        appliance__feed__project=capture.project,
        appliance__feed__format=Feed.Format.LOCAL,
        appliance__identifier__startswith=f"{capture.appliance_prefix}-",
        version=capture.version,
        published_at__gte=since,
    ).select_related("appliance")
    name = captured_template_name(capture.source_name, capture.version)
    template = StackTemplate.objects.filter(project=capture.project, name=name, created_at__gte=since).first()
    return CaptureMade(versions=list(versions), template=template)

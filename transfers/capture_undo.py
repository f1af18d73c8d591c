"""Failing a capture all or nothing: the versions, appliances, cached files and template it made are
removed again, and the capture says why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from catalog.models import Appliance, ApplianceVersion, CachedImage
from provisioning.models import Instance, Stack, StackTemplate, Status
from provisioning.services import stack_jobs
from provisioning.services.events import stack_event
from transfers.capture_request import CAPTURE
from transfers.models import FINAL_STATUSES, Capture, JobStatus


@dataclass
class CaptureMade:
    """What the job made so far: all of it goes again if the capture fails."""

    versions: list[ApplianceVersion] = field(default_factory=list)
    template: StackTemplate | None = None


def give_up(capture: Capture, stack: Stack, made: CaptureMade, reason: str) -> str:
    """Remove what the capture made, give the stack back if it still waits, and say why."""
    problems = undo_made(made)
    if Stack.objects.filter(pk=stack.pk, status=CAPTURE.busy).exists():
        stack_jobs.give_back(stack, busy=CAPTURE.busy, action="capture", reason=reason)
    else:
        stack_event(stack, f"capture failed: {reason}", is_error=True)
    mark_failed(capture, f"{reason}; {problems}" if problems else reason)
    return "failed"


def mark_failed(capture: Capture, reason: str) -> None:
    now = timezone.now()
    Capture.objects.filter(pk=capture.pk).exclude(status__in=FINAL_STATUSES).update(
        status=JobStatus.FAILED, error=reason[:2000], finished_at=now, updated_at=now
    )


def undo_made(made: CaptureMade) -> str:
    """Remove the template and versions the capture made, and what only they used; what could not
    be removed is said (a version someone launched meanwhile is withdrawn instead)."""
    if made.template is not None:
        StackTemplate.objects.filter(pk=made.template.pk).delete()
    kept: list[str] = []
    for version in made.versions:
        launched = Instance.objects.filter(appliance_version_id=version.pk).exclude(status=Status.DELETED).exists()
        try:
            if not launched:
                ApplianceVersion.objects.filter(pk=version.pk).delete()
                continue
        except ProtectedError:
            pass
        ApplianceVersion.objects.filter(pk=version.pk).update(withdrawn=True)
        kept.append(f"{version.appliance.identifier} {version.version}")
    appliance_ids = {version.appliance_id for version in made.versions}
    Appliance.objects.filter(pk__in=appliance_ids, versions__isnull=True).delete()
    _drop_unused_images({version.image_id for version in made.versions if version.image_id is not None})
    if kept:
        return f"kept, withdrawn, as stacks were launched from them meanwhile: {', '.join(kept)}"
    return ""


def _drop_unused_images(image_ids: set[int]) -> None:
    cache = Path(settings.IMAGE_CACHE_DIR).resolve()
    for image_id in image_ids:
        with transaction.atomic():
            image = CachedImage.objects.select_for_update().filter(pk=image_id).first()
            if image is None or ApplianceVersion.objects.filter(image_id=image_id).exists():
                continue  # another version uses these bytes too
            path = Path(image.path).resolve() if image.path else None
            image.delete()
        if path is not None and path.parent == cache:
            path.unlink(missing_ok=True)

"""A build's images: each downloaded by a task of its own, while the build waits without a worker.

A download can take most of a task's time budget, so a build does not download: it asks for the
downloads its stack still needs (one per appliance version, however many launches want it) and
leaves the stack pending. When a download ends, well or badly, it queues again the builds of the
pending stacks that use its version (``builds_resume``). A stack fails on a download that ended
badly after it was launched; an older failure earns a fresh attempt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from catalog.download_limits import download_room_wait
from catalog.image_cache import image_download, image_request, usable_image
from catalog.image_room import STALE_DOWNLOAD
from catalog.models import ApplianceVersion, ImageDelivery, image_source_key
from portal.task_queues import Queue, enqueue
from provisioning.demand import GIB
from provisioning.models import Instance, Stack, Status
from provisioning.progress import announce_stack_change


@dataclass(frozen=True)
class ImagesOutlook:
    """What a stack's images allow: build now, wait for downloads, or fail with a reason."""

    missing: list[ApplianceVersion] = field(default_factory=list)
    failure: str = ""


def stack_images_outlook(*, stack: Stack, instances: Iterable[Instance]) -> ImagesOutlook:
    """Whether every instance's image is usable and fits the disk its launch claimed."""
    missing: list[ApplianceVersion] = []
    by_version: dict[int, list[Instance]] = {}
    for instance in instances:
        by_version.setdefault(instance.live_version.pk, []).append(instance)
    for group in by_version.values():
        version = group[0].live_version
        image = usable_image(version)
        if image is None:
            failure = _download_failure_since(version, launched_at=stack.created_at)
            if failure:
                return ImagesOutlook(failure=failure)
            missing.append(version)
            continue
        for instance in group:
            if image.virtual_size_bytes > instance.disk_gib * GIB:
                return ImagesOutlook(failure=disk_too_small(version, image.virtual_size_bytes, instance))
    return ImagesOutlook(missing=missing)


def disk_too_small(version: ApplianceVersion, virtual_size_bytes: int, instance: Instance) -> str:
    return (
        f"the image of {version} is a disk of {virtual_size_bytes} bytes, larger than the "
        f"{instance.disk_gib} GiB {instance.name} was launched with"
    )


def _download_failure_since(version: ApplianceVersion, *, launched_at: datetime) -> str:
    """Why the version's own download, started after ``launched_at``, failed ("" if none did).

    A download that started before the launch and failed is no reason to fail this stack: it gets
    an attempt of its own, and that one's outcome counts.
    """
    delivery = ImageDelivery.objects.filter(version=version, source=image_source_key(version.image_url)).first()
    if delivery is None or delivery.started_at is None or delivery.started_at < launched_at:
        return ""
    if delivery.status == ImageDelivery.Status.ERROR:
        return delivery.error
    if delivery.status == ImageDelivery.Status.DOWNLOADING and delivery.updated_at < timezone.now() - STALE_DOWNLOAD:
        reason = f"the download of the image for {version} stopped: its worker went away"
        ImageDelivery.objects.filter(pk=delivery.pk, updated_at=delivery.updated_at).update(
            status=ImageDelivery.Status.ERROR, error=reason, reserved_bytes=0, finished_at=timezone.now()
        )
        return reason
    return ""


def image_download_queue(version: ApplianceVersion) -> str:
    """Queue the download of ``version``'s image (after the current transaction) unless one is queued or running.

    Returns why it waits instead ("" if it did not): its project has its limit of downloads going
    (``catalog.download_limits``); it is asked for again when one of them ends (``builds_resume``).
    """
    with transaction.atomic():
        wait = download_room_wait(version=version)
        if wait:
            return wait
        if image_request(version=version):
            transaction.on_commit(
                lambda: enqueue(
                    "provisioning.tasks.download_image",
                    version.pk,
                    queue=Queue.DOWNLOADS,
                    task_name=f"download-image-{version.pk}",
                )
            )
    return ""


def stacks_waiting_for(version: ApplianceVersion) -> list[int]:
    return list(
        Stack.objects.filter(status=Status.PENDING, instances__appliance_version=version)
        .distinct()
        .values_list("pk", flat=True)
    )


def builds_resume(*, version: ApplianceVersion) -> int:
    """Queue again the builds of pending stacks that use ``version``, and of the other pending stacks of
    the project whose feed names it (they may have waited for its download limit); return how many."""
    waiting = set(stacks_waiting_for(version))
    project_id = version.appliance.feed.project_id
    if project_id is not None:
        waiting |= set(Stack.objects.filter(status=Status.PENDING, project_id=project_id).values_list("pk", flat=True))
    for stack_id in sorted(waiting):
        enqueue(
            "provisioning.tasks.build_stack", stack_id, queue=Queue.BUILDS, task_name=f"build-stack-{stack_id}-image"
        )
    return len(waiting)


def image_download_for_builds(*, version: ApplianceVersion) -> ImageDelivery:
    """Download ``version``'s image (in a task of its own, with a task's whole time budget), then resume the
    builds that wait for it, however it ended."""
    watchers = stacks_waiting_for(version)

    def nudge(_done: int, _total: int | None) -> None:
        # Progress lives on the delivery row; nudging the waiting stacks' pages lets them redraw the bar.
        for stack_id in watchers:
            announce_stack_change(stack_id)

    delivery = image_download(version=version, progress=nudge)
    builds_resume(version=version)
    return delivery

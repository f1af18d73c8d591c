"""Putting a cached image into a host's storage pool once, so instances only overlay it, and
removing it again once nothing there needs it.

The HostImage row is the upload's claim: whoever creates it (or takes over a stale one) uploads,
the others wait. No transaction is held during the upload, which can take minutes.

A copy that no instance on its host needs and that no build has used for
``BASE_VOLUME_IDLE_SECONDS`` is removed (the reconciler asks, ``idle_base_volumes_remove``), so a
host's pool does not keep every image it ever ran. The row is marked "removing" first, in a
transaction that checks no active instance on the host runs that image: a build only uses a copy
for an instance whose row is already written (launches place instances before their builds), so
a build that needs it either stopped the removal or finds the row "removing", waits, and uploads it
again once the row is gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import CachedImage
from portal import throttle
from provisioning import naming
from provisioning.drivers import DriverError, HypervisorDriver, VolumeInfo
from provisioning.models import ACTIVE_STATUSES, Host, HostImage, Instance, Stack
from provisioning.services.events import stack_event

# An upload whose worker has not reported for this long is taken over by the next build.
STALE_UPLOAD_AFTER = timedelta(minutes=10)
_WAIT_SECONDS = 0.5


def ensure_base_volume(*, driver: HypervisorDriver, host: Host, image: CachedImage, stack: Stack) -> VolumeInfo:
    """The image as a volume in the host's pool; uploaded by the first build that needs it."""
    volume = _present_base_volume(driver=driver, host=host, image=image, stack=stack)
    HostImage.objects.filter(host=host, image=image).update(last_used_at=timezone.now())
    return volume


def _present_base_volume(*, driver: HypervisorDriver, host: Host, image: CachedImage, stack: Stack) -> VolumeInfo:
    name = naming.base_volume_name(image.sha256, "qcow2")
    while True:
        copy, created = HostImage.objects.get_or_create(host=host, image=image, defaults={"volume_name": name})
        if created:
            # A volume already there was left by an earlier installation with the same name (sha256).
            existing = driver.find_volume(pool=host.storage_pool, name=copy.volume_name)
            if existing is not None:
                _mark_uploaded(copy, existing)
                return existing
            return _upload(driver=driver, host=host, image=image, copy=copy, stack=stack)
        if copy.state == HostImage.State.READY:
            existing = driver.find_volume(pool=host.storage_pool, name=copy.volume_name)
            if existing is not None:
                return existing
        elif copy.updated_at > timezone.now() - STALE_UPLOAD_AFTER:
            time.sleep(_WAIT_SECONDS)  # another build is uploading it, or the reconciler removing it
            continue
        # Ready but gone from the pool, or an upload (or removal) whose worker stopped reporting: take it over.
        taken = HostImage.objects.filter(pk=copy.pk, updated_at=copy.updated_at).update(
            state=HostImage.State.UPLOADING, bytes_done=0, updated_at=timezone.now()
        )
        if taken:
            driver.delete_volume(pool=host.storage_pool, name=copy.volume_name)  # a partial upload must not be reused
            return _upload(driver=driver, host=host, image=image, copy=copy, stack=stack)


def _upload(*, driver: HypervisorDriver, host: Host, image: CachedImage, copy: HostImage, stack: Stack) -> VolumeInfo:
    size_mib = image.size_bytes // (1024 * 1024)
    stack_event(stack, f"uploading base image to {host.name} ({size_mib} MiB)")
    quarters_told = [0]

    def record(done: int, total: int) -> None:
        HostImage.objects.filter(pk=copy.pk).update(bytes_done=done, bytes_total=total, updated_at=timezone.now())
        quarter = 4 * done // total if total else 4
        if 0 < quarter < 4 and quarter > quarters_told[0]:
            quarters_told[0] = quarter
            stack_event(stack, f"uploading base image to {host.name}: {25 * quarter}%")

    try:
        volume = driver.upload_volume(
            pool=host.storage_pool,
            name=copy.volume_name,
            source_path=image.path,
            disk_format="qcow2",
            capacity_bytes=image.virtual_size_bytes,
            progress=throttle.every(1.0, record),
        )
    except BaseException:
        copy.delete()  # release the claim so the next build tries again
        raise
    _mark_uploaded(copy, volume)
    return volume


def _mark_uploaded(copy: HostImage, volume: VolumeInfo) -> None:
    HostImage.objects.filter(pk=copy.pk).update(
        state=HostImage.State.READY,
        volume_path=volume.path,
        capacity_bytes=volume.capacity_bytes,
        uploaded_at=timezone.now(),
        updated_at=timezone.now(),
    )


@dataclass
class BaseVolumeRemoval:
    removed: list[str] = field(default_factory=list)  # volume names
    failed: list[str] = field(default_factory=list)


def idle_base_volumes_remove(*, driver: HypervisorDriver, host: Host, now: datetime | None = None) -> BaseVolumeRemoval:
    """Remove ``host``'s copies of images no instance there needs and no build used for the idle period."""
    now = now or timezone.now()
    result = BaseVolumeRemoval()
    for copy in _take_idle_copies(host=host, idle_since=now - timedelta(seconds=settings.BASE_VOLUME_IDLE_SECONDS)):
        try:
            driver.delete_volume(pool=host.storage_pool, name=copy.volume_name)
        except DriverError as exc:
            # Still in the pool as far as we know: ready again for the builds, tried again next round.
            HostImage.objects.filter(pk=copy.pk, state=HostImage.State.REMOVING).update(
                state=HostImage.State.READY, updated_at=timezone.now()
            )
            result.failed.append(f"base volume {copy.volume_name}: {exc.message}")
            continue
        # Unless a build took the row over meanwhile (the removal stalled): then it is that build's upload.
        HostImage.objects.filter(pk=copy.pk, state=HostImage.State.REMOVING).delete()
        result.removed.append(copy.volume_name)
    return result


def _take_idle_copies(*, host: Host, idle_since: datetime) -> list[HostImage]:
    """Mark the idle copies "removing" and return them; a short transaction, no libvirt call inside."""
    # Without the versions that have no image yet: a NULL in NOT IN would keep every copy for ever.
    needed_here = Instance.objects.filter(
        host=host, status__in=ACTIVE_STATUSES, appliance_version__image__isnull=False
    ).values("appliance_version__image")
    with transaction.atomic():
        idle: list[HostImage] = list(
            HostImage.objects.select_for_update(skip_locked=True)
            .annotate(last_use=Coalesce("last_used_at", "uploaded_at"))
            .filter(host=host, state=HostImage.State.READY, last_use__lt=idle_since)
            .exclude(image__in=needed_here)
            .order_by("pk")
        )
        HostImage.objects.filter(pk__in=[copy.pk for copy in idle]).update(
            state=HostImage.State.REMOVING, updated_at=timezone.now()
        )
    return idle

"""Putting a cached image into a host's storage pool once, so instances only overlay it.

The HostImage row is the upload's claim: whoever creates it (or takes over a stale one) uploads,
the others wait. No transaction is held during the upload, which can take minutes.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone

from catalog.models import CachedImage
from portal import throttle
from provisioning import naming
from provisioning.drivers import HypervisorDriver, VolumeInfo
from provisioning.models import Host, HostImage, Stack
from provisioning.services.events import stack_event

# An upload whose worker has not reported for this long is taken over by the next build.
STALE_UPLOAD_AFTER = timedelta(minutes=10)
_WAIT_SECONDS = 0.5


def ensure_base_volume(*, driver: HypervisorDriver, host: Host, image: CachedImage, stack: Stack) -> VolumeInfo:
    """The image as a volume in the host's pool; uploaded by the first build that needs it."""
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
            time.sleep(_WAIT_SECONDS)  # another build is uploading it
            continue
        # Ready but gone from the pool, or an upload whose worker stopped reporting: take it over.
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

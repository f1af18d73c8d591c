"""An instance's disk as one self-contained image file, and a stack held still while its disks are copied.

An instance's disk is a qcow2 overlay in its host's pool over a base volume that is the image
cache's copy of its appliance's image. The copy goes through libvirt's storage API, as a move to
another host does: the overlay is downloaded, its header pointed (``rebase -u``) at the image
cache's local copy of the same base, and ``qemu-img convert`` writes the whole chain as one file
with no backing file, in the format asked for. A host whose volumes keep no bytes (a simulated
one) has a guest that never wrote anything: its disk is the base image at the overlay's size.

A running guest keeps writing; ``stack_paused`` pauses the tiers for as long as their disks are
read (QEMU flushes its caches to the image when a guest is paused), so every disk of a stack is
taken at one moment, as after a power cut, and resumes them afterwards in dependency order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from catalog.image_cache import use_image
from catalog.models import CachedImage
from provisioning.drivers import DriverError, HypervisorDriver
from provisioning.models import Instance, Stack, Status
from provisioning.services import stack_jobs
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from transfers.disk_convert import ConvertError, convert, create_overlay, overlay_facts, rebase

logger = logging.getLogger(__name__)

FORMATS = ("qcow2", "raw", "vmdk")  # vmdk: streamOptimized, for an OVA
BASE_FORMAT = "qcow2"  # the image cache keeps every image converted to qcow2
_HASH_CHUNK_BYTES = 4 * 1024 * 1024
_RESUME_ATTEMPTS = 3

Progress = Callable[[int, int], None]


class DiskCopyError(Exception):
    """The disk could not be copied; ``message`` may be shown to whoever may see the instance."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class DiskCopy:
    path: Path
    size_bytes: int  # the file's length
    virtual_size_bytes: int  # the disk the guest sees
    sha256: str  # of the file


@dataclass(frozen=True)
class LocalDisk:
    """An instance's overlay downloaded into a local folder, over the image cache's copy of its base."""

    instance_name: str
    overlay: Path
    downloaded_bytes: int
    virtual_size_bytes: int


def instance_disk_copy(
    instance: Instance, dest: Path, *, fmt: str = "qcow2", progress: Progress | None = None
) -> DiskCopy:
    """Write ``instance``'s disk to ``dest`` as one image in ``fmt`` (qcow2, raw or a streamOptimized vmdk).

    ``progress(done, total)`` counts bytes: the overlay's download, then the disk's virtual size
    while it is converted (the total is known once the download starts). ``dest`` appears only
    once complete; on failure nothing is left in its folder. Raises ``DiskCopyError``.
    A running guest should be paused meanwhile (``stack_paused``) for a consistent copy; to pause it
    only while its disk is read, call ``download_disk`` in the pause and ``convert_disk`` after it.
    """
    check_format(fmt)
    dest = Path(os.path.abspath(dest))
    with work_folder(beside=dest) as folder:
        disk = download_disk(instance, folder, progress=progress)

        def converting(done: int, total: int) -> None:
            if progress is not None:
                progress(disk.downloaded_bytes + done, disk.downloaded_bytes + total)

        return convert_disk(disk, dest, fmt=fmt, progress=converting)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise DiskCopyError(f"cannot export a disk as '{fmt}' (one of {', '.join(FORMATS)})")


@contextmanager
def work_folder(*, beside: Path) -> Iterator[Path]:
    """A private folder next to ``beside`` (the same file system, so finished files are renamed, not copied),
    removed with whatever is in it when the block ends."""
    try:
        with tempfile.TemporaryDirectory(dir=beside.parent, prefix=".disk-copy-") as folder:
            yield Path(folder)
    except OSError as exc:
        logger.warning("disk copy work folder beside %s: %s", beside, exc)
        raise DiskCopyError(f"the copy could not be written ({exc.strerror})") from exc


def download_disk(instance: Instance, folder: Path, *, progress: Progress | None = None) -> LocalDisk:
    """Download ``instance``'s overlay into ``folder`` and point it at the image cache's copy of its base.

    This is the part that reads the host's volume: what a pause must cover. ``progress`` counts the
    downloaded bytes. Raises ``DiskCopyError``; the caller removes ``folder``.
    """
    host = instance.host
    if host is None or not instance.volume_name:
        raise DiskCopyError(f"{instance.name} has no disk on a host")
    version = instance.appliance_version
    image = use_image(version) if version is not None else None
    if image is None:
        raise DiskCopyError(f"the image of {instance.name} is no longer in the image cache; launch it again first")
    overlay = folder / f"overlay-{instance.pk}.qcow2"
    try:
        with driver_for(host) as driver:
            downloaded = _download_overlay(driver, instance, image, overlay, progress)
        facts = overlay_facts(overlay)
    except DriverError as exc:
        raise DiskCopyError(f"{instance.name}: {exc.message}") from exc
    except ConvertError as exc:
        logger.warning("disk copy of instance %s: %s %s", instance.pk, exc.message, exc.detail)
        raise DiskCopyError(f"{instance.name}: the disk could not be read ({exc.message})") from exc
    return LocalDisk(
        instance_name=instance.name,
        overlay=overlay,
        downloaded_bytes=downloaded,
        virtual_size_bytes=facts.virtual_size_bytes,
    )


def convert_disk(disk: LocalDisk, dest: Path, *, fmt: str, progress: Progress | None = None) -> DiskCopy:
    """Write a downloaded disk to ``dest`` as one file in ``fmt``, and hash it; the overlay is removed after.

    ``progress`` counts the disk's virtual size as qemu-img goes. ``dest`` appears only once complete.
    """
    check_format(fmt)
    dest = Path(os.path.abspath(dest))
    partial = disk.overlay.with_name(f".{disk.overlay.stem}.{fmt}.part")
    size = disk.virtual_size_bytes

    def converting(share: float) -> None:
        if progress is not None:
            progress(int(share * size), size)

    try:
        converting(0.0)
        convert(disk.overlay, partial, output_format=fmt, virtual_size_bytes=size, progress=converting)
        disk.overlay.unlink()  # room on the disk for the files that follow
        digest = file_sha256(partial)
        length = partial.stat().st_size
        os.replace(partial, dest)
    except ConvertError as exc:
        logger.warning("disk copy of %s: %s %s", disk.instance_name, exc.message, exc.detail)
        raise DiskCopyError(f"{disk.instance_name}: the disk could not be converted ({exc.message})") from exc
    except OSError as exc:
        partial.unlink(missing_ok=True)
        logger.warning("disk copy of %s: %s", disk.instance_name, exc)
        raise DiskCopyError(f"{disk.instance_name}: the copy could not be written ({exc.strerror})") from exc
    return DiskCopy(path=dest, size_bytes=length, virtual_size_bytes=size, sha256=digest)


def _download_overlay(
    driver: HypervisorDriver, instance: Instance, image: CachedImage, overlay: Path, progress: Progress | None
) -> int:
    """The instance's overlay as a local qcow2 over the image cache's base; the bytes downloaded."""
    host = instance.host
    assert host is not None
    volume = driver.find_volume(pool=host.storage_pool, name=instance.volume_name)
    if volume is None:
        raise DiskCopyError(f"{instance.name}: its disk is missing from its host")
    base = Path(image.path)
    if not driver.host_info().capabilities.stores_volume_data:
        create_overlay(overlay, backing_path=base, backing_format=BASE_FORMAT, virtual_size_bytes=volume.capacity_bytes)
        if progress is not None:
            progress(0, 0)
        return 0
    downloaded = driver.download_volume(
        pool=host.storage_pool, name=instance.volume_name, dest_path=str(overlay), progress=progress
    )
    rebase(overlay, backing_path=base, backing_format=BASE_FORMAT)
    return downloaded


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def stack_paused(stack: Stack, *, instances: Iterable[Instance] | None = None) -> Iterator[list[Instance]]:
    """Pause the stack's running tiers (or only ``instances``) for the block; yield the ones paused.

    A shelved or stopped stack has nothing running and is left alone. Afterwards the paused tiers
    are resumed in dependency order, also when the block failed; a tier that cannot be resumed is
    reported as an error on the stack and raised as ``DriverError`` (unless the block raised first).
    """
    if stack.status != Status.RUNNING:
        yield []
        return
    layers = stack_jobs.instance_layers(stack)
    if instances is not None:
        wanted = {i.pk for i in instances}
        layers = [[i for i in layer if i.pk in wanted] for layer in layers]
    paused: list[Instance] = []
    with driver_for(stack_jobs.stack_host(stack)) as driver:
        try:
            for instance in (i for layer in layers for i in layer):
                if driver.domain_info(name=instance.domain_name).state == "running":
                    driver.pause_domain(name=instance.domain_name)
                    paused.append(instance)
        except DriverError:
            _resume(stack, layers, paused)
            raise
    try:
        yield paused
    except BaseException:
        with suppress(DriverError):
            _resume(stack, layers, paused)
        raise
    _resume(stack, layers, paused)


def _resume(stack: Stack, layers: list[list[Instance]], paused: list[Instance]) -> None:
    """Resume the paused tiers, the ones others depend on first; every one is tried, the first failure raised."""
    if not paused:
        return
    wanted = {i.pk for i in paused}
    failures: list[tuple[Instance, DriverError]] = []
    with driver_for(stack_jobs.stack_host(stack)) as driver:
        for instance in (i for layer in layers for i in layer if i.pk in wanted):
            error = _resume_one(driver, instance)
            if error is not None:
                failures.append((instance, error))
    for instance, error in failures:
        logger.warning("stack %s: resuming %s: %s", stack.pk, instance.domain_name, error.detail or error.message)
        message = f"{instance.name} could not be resumed after its disk was read: {error.message}"
        stack_event(stack, message, is_error=True)
    if failures:
        raise failures[0][1]


def _resume_one(driver: HypervisorDriver, instance: Instance) -> DriverError | None:
    error: DriverError | None = None
    for _attempt in range(_RESUME_ATTEMPTS):
        try:
            driver.resume_domain(name=instance.domain_name)
            return None
        except DriverError as exc:
            error = exc
            if not exc.retryable:
                break
            time.sleep(1)
    return error

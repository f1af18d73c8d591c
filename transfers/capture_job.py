"""The capture's background job: copy every tier's disk, register each copy as a version of the
project's own catalog, then make the template that launches them.

The disks are copied with all the tiers paused together (``stack_paused``), so they agree with each
other as after a power cut at that moment, and the stack is given back. Each copy then goes through
the same checks and conversion as an upload (``own_version_add``) and becomes ``<prefix>-<tier>`` at
the capture's version: its role is the tier's name, its minimum vCPUs and memory the tier's, its
port the one the tier's appliance serves. Last comes the template (``transfers.capture_template``).
Whatever fails, what the job made is removed again (``transfers.capture_undo``).
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.models import ApplianceVersion
from catalog.own_images import OwnVersion, own_version_add
from portal import errors, throttle
from provisioning.drivers import DriverError
from provisioning.models import Stack, StackTemplate, Status
from provisioning.services import stack_jobs
from provisioning.services.events import stack_event
from provisioning.services.templates import template_create
from provisioning.templates import TemplateDocument
from transfers.capture_naming import captured_identifier, captured_template_name
from transfers.capture_request import CAPTURE
from transfers.capture_sources import TierSource, tier_sources
from transfers.capture_template import captured_document, template_source
from transfers.capture_undo import CaptureMade, give_up, mark_failed
from transfers.disk_copy import DiskCopy, DiskCopyError, instance_disk_copy, stack_paused
from transfers.models import Capture, JobStatus
from transfers.vmcast_producer import served_digest

logger = logging.getLogger(__name__)

_PROGRESS_EVERY_SECONDS = 1.0
UNEXPECTED = "the capture failed for a reason the portal did not expect; operators can read why in its log"


class CaptureFailed(Exception):
    """A step of the job failed; the message is for the person who asked (no paths, no libvirt text)."""


def capture_job(*, stack_id: int, capture_id: int) -> str:
    """Copy the disks, make the versions and the template; end the capture ready or failed."""
    started = timezone.now()
    claimed = Capture.objects.filter(pk=capture_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=started, updated_at=started
    )
    if not claimed:
        return "capture is not waiting for this job"
    capture = Capture.objects.select_related("project", "created_by").get(pk=capture_id)
    stack = stack_jobs.claim_job(stack_id, CAPTURE.busy)
    if stack is None:
        mark_failed(capture, "the stack changed before its capture began; ask again")
        return "failed"
    work = Path(settings.CAPTURE_DIR) / f"capture-{capture.pk}"
    made = CaptureMade()
    try:
        copies = _copy_disks(capture, stack, work)
        _add_versions(capture, stack, copies, made)
        made.template = _add_template(capture, stack)
    except CaptureFailed as exc:
        return give_up(capture, stack, made, str(exc))
    except Exception:
        logger.exception("capture %s of stack %s failed", capture.pk, stack.pk)
        return give_up(capture, stack, made, UNEXPECTED)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _warm_digests(made.versions)
    finished = timezone.now()
    Capture.objects.filter(pk=capture.pk).update(
        status=JobStatus.READY,
        template=made.template,
        bytes_done=F("bytes_total"),
        error="",
        finished_at=finished,
        updated_at=finished,
    )
    stack_event(
        stack,
        f"capture: {len(made.versions)} appliance versions '{capture.version}' and template "
        f"'{made.template.name if made.template else ''}' are in the project's catalog",
        actor=capture.created_by,
    )
    return "ready"


def _copy_disks(capture: Capture, stack: Stack, work: Path) -> dict[str, DiskCopy]:
    """Every tier's disk, read with the tiers paused together; then the stack is given back."""
    sources = tier_sources(stack)
    sizes = {source.tier.name: source.disk_bytes() for source in sources}
    total = sum(sizes.values()) or capture.bytes_total
    copied = 0  # the disk bytes of the tiers done

    def progress_of(tier: str) -> Callable[[int, int], None]:
        # In disk bytes: each tier's share of its own copy (download, then conversion) times its size.
        def record(done: int, of: int) -> None:
            share = done / of if of > 0 else 0.0
            Capture.objects.filter(pk=capture.pk).update(
                bytes_done=copied + int(share * sizes[tier]), bytes_total=total, updated_at=timezone.now()
            )

        return throttle.every(_PROGRESS_EVERY_SECONDS, record)

    # stack_paused pauses the tiers of a running stack; while the capture owns it the stack says
    # "snapshotting", so it is shown the status the capture began from.
    settled = copy.copy(stack)
    settled.status = stack.status_before or Status.RUNNING
    copies: dict[str, DiskCopy] = {}
    try:
        work.mkdir(parents=True, exist_ok=True)
        with stack_paused(settled, instances=[source.instance for source in sources]):
            for source in sources:
                name = source.tier.name
                copies[name] = instance_disk_copy(
                    source.instance, work / f"{name}.qcow2", fmt="qcow2", progress=progress_of(name)
                )
                copied += sizes[name]
    except (DiskCopyError, DriverError) as exc:
        raise CaptureFailed(f"the disks could not be copied: {exc.message}") from None
    except OSError as exc:
        raise CaptureFailed(f"the disks could not be copied: writing them failed ({exc.strerror})") from None
    back_to = Status(stack.status_before or Status.RUNNING)
    stack_jobs.settle(
        stack, busy=CAPTURE.busy, status=back_to, message=f"capture: the disks of {len(copies)} tiers copied"
    )
    return copies


def _version_spec(capture: Capture, stack: Stack, source: TierSource) -> OwnVersion:
    tier = source.tier.name
    origin = source.origin
    return OwnVersion(
        appliance=captured_identifier(capture.appliance_prefix, tier),
        version=capture.version,
        title=f"{tier} of {stack.name}",
        description=(
            f"Tier '{tier}' of stack '{stack.name}' (project {capture.project.name}), captured with its data; "
            f"first launched from {origin.appliance.identifier} {origin.version}."
        ),
        role=tier,
        min_ram_mib=source.instance.memory_mib,
        min_vcpus=source.instance.vcpus,
        service_port=origin.service_port,
        checksum_source=ApplianceVersion.ChecksumSource.UPLOAD,
    )


def _add_versions(capture: Capture, stack: Stack, copies: dict[str, DiskCopy], made: CaptureMade) -> None:
    for source in tier_sources(stack):
        disk = copies[source.tier.name]
        try:
            version = own_version_add(
                project=capture.project, spec=_version_spec(capture, stack, source), source=disk.path
            )
        except CatalogError as exc:
            raise CaptureFailed(f"tier '{source.tier.name}': {exc.detail}") from None
        finally:
            disk.path.unlink(missing_ok=True)  # its bytes are in the image cache now (or refused)
        made.versions.append(version)


def _add_template(capture: Capture, stack: Stack) -> StackTemplate:
    document = captured_document(
        TemplateDocument.from_json(stack.document),
        prefix=capture.appliance_prefix,
        version=capture.version,
        stack_name=stack.name,
    )
    creator = capture.created_by
    if creator is None:
        raise CaptureFailed("the account that asked for the capture no longer exists")
    try:
        return template_create(
            user=creator,
            project=capture.project,
            name=captured_template_name(stack.name, capture.version),
            source=template_source(document, stack_name=stack.name),
            description=document.description,
        )
    except errors.PortalError as exc:
        raise CaptureFailed(f"the template could not be made: {exc.detail}") from None


def _warm_digests(versions: list[ApplianceVersion]) -> None:
    """Measure what the project's VMcast will serve now, so its first reader does not wait for it."""
    for version in versions:
        if version.image is not None:
            try:
                served_digest(version.image)
            except OSError:
                logger.warning("capture: could not measure the cached image %s", version.image_id)

"""Publishing a stack back: its tiers' disks as new versions of the project's own catalog, and a
template that launches them as the stack was.

Asking (``capture_create``) checks what can be checked at once: a member of the stack's project, a
stack that is running, stopped or shelved and not busy, an appliance prefix and a version that name
nothing yet (``<prefix>-<tier>`` at that version, in the project's own catalog), a template name
that is free. The stack is then busy ("snapshotting": nothing else may start or stop it) until its
disks are read.

The job (``capture_job``) copies every tier's disk with all the tiers paused together
(``stack_paused``), so the disks agree with each other as after a power cut at that moment, and
gives the stack back. Each copy then goes through the same checks and conversion as an upload
(``own_version_add``) and becomes ``<prefix>-<tier>`` at ``version``: its role is the tier's name,
its minimum vCPUs and memory the tier's, its port the one the tier's appliance serves. Last comes
the template, named after the stack and the version, with the stack's tiers, dependencies,
published ports, sizes and settings, each tier pointing at its captured version.

All or nothing: whatever fails (a copy, an image refused, a name taken meanwhile, the template), the
versions, appliances, cached files and template the capture made are removed again and the capture
says why. Of a tier run as several instances, the first instance's disk is taken: the tier's count
stays, and every instance of a launch of the template starts from that disk.
"""

from __future__ import annotations

import copy
import logging
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction
from django.db.models import F, ProtectedError, QuerySet
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed
from catalog.own_images import OwnVersion, own_version_add
from portal import errors, throttle
from portal.models import Project, Role
from portal.scoping import Account, User, project_ids_for, require_role
from provisioning.drivers import DriverError
from provisioning.models import Instance, Stack, StackTemplate, Status
from provisioning.name_rules import TEMPLATE_NAME
from provisioning.services import stack_jobs
from provisioning.services.events import stack_event
from provisioning.services.stack_jobs import StackAction
from provisioning.services.templates import template_create
from provisioning.template_limits import MAX_DESCRIPTION_CHARS
from provisioning.templates import TemplateDocument, Tier
from transfers.disk_copy import DiskCopy, DiskCopyError, instance_disk_copy, stack_paused
from transfers.models import FINAL_STATUSES, Capture, JobStatus
from transfers.vmcast_producer import served_digest

logger = logging.getLogger(__name__)

GIB = 1024**3
CAPTURE = StackAction(
    "capture",
    Status.SNAPSHOTTING,  # like a snapshot, it holds the stack still while its disks are read
    (Status.RUNNING, Status.STOPPED, Status.SHELVED),
    "transfers.capture_tasks.capture_stack",
)
# An appliance prefix: "<prefix>-<tier>" must be an identifier every feed reader takes (lowercase,
# since feeds are read lowercased, and a template names the appliance exactly).
APPLIANCE_PREFIX = re.compile(r"[a-z0-9]([a-z0-9._-]{0,58}[a-z0-9])?")
PREFIX_RULE = "1-60 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
VERSION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._+-]{0,48}[A-Za-z0-9])?")
VERSION_RULE = "1-50 letters, digits, '.', '_', '+' or '-', starting and ending with a letter or digit"
_PROGRESS_EVERY_SECONDS = 1.0
UNEXPECTED = "the capture failed for a reason the portal did not expect; operators can read why in its log"


class CaptureFailed(Exception):
    """A step of the job failed; the message is for the person who asked (no paths, no libvirt text)."""


# --- reading ------------------------------------------------------------------------------------


def captures_visible_to(user: User) -> QuerySet[Capture]:
    """The captures of the caller's projects (another project's ids answer 404)."""
    return Capture.objects.filter(project__in=project_ids_for(user)).select_related("project", "stack", "template")


def capture_get(*, user: User, capture_id: int) -> Capture:
    capture = captures_visible_to(user).filter(pk=capture_id).first()
    if capture is None:
        raise errors.NotFound("no such capture")
    return capture


def captured_identifier(prefix: str, tier: str) -> str:
    return f"{prefix}-{tier}"


def captured_template_name(stack_name: str, version: str) -> str:
    """The template's name: the stack's, then the version (letters and digits kept, the rest '-')."""
    suffix = re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")
    room = TEMPLATE_NAME.max_length - len(stack_name) - 1
    suffix = suffix[:room].strip("-")
    return f"{stack_name}-{suffix}" if suffix else stack_name


def progress_percent(capture: Capture) -> int | None:
    """How far the disks' copy is, 0-100; None before the sizes are known. Ready is 100."""
    if capture.status == JobStatus.READY:
        return 100
    if capture.bytes_total <= 0:
        return None
    return min(100, math.floor(100 * capture.bytes_done / capture.bytes_total))


# --- asking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One tier to capture: the instance whose disk is taken."""

    tier: Tier
    instance: Instance

    @property
    def origin(self) -> ApplianceVersion:
        """The appliance version the tier was launched from (``_sources`` keeps only tiers that have one)."""
        version = self.instance.appliance_version
        assert version is not None
        return version

    def disk_bytes(self) -> int:
        if self.instance.disk_gib:
            return self.instance.disk_gib * GIB
        return self.origin.known_virtual_bytes or 0


def _sources(stack: Stack) -> list[_Source]:
    document = TemplateDocument.from_json(stack.document)
    live = stack.instances.exclude(status=Status.DELETED).select_related(
        "host", "appliance_version__image", "appliance_version__appliance", "appliance_version__delivery"
    )
    by_role: dict[str, Instance] = {}
    for instance in live.order_by("id"):
        by_role.setdefault(instance.role, instance)
    sources = []
    for tier in document.tiers:
        found = by_role.get(tier.name)
        if found is None or found.host is None:
            raise errors.WrongState(f"tier '{tier.name}' of the stack has no disk on a host to capture")
        if found.appliance_version is None:
            # Its disk is an overlay over that version's image: without it there is nothing to copy it with.
            raise errors.WrongState(f"the appliance tier '{tier.name}' was launched from is gone from the catalog")
        sources.append(_Source(tier=tier, instance=found))
    return sources


def _check_format(appliance_prefix: str, version: str) -> None:
    if not APPLIANCE_PREFIX.fullmatch(appliance_prefix):
        raise errors.Invalid.for_field("appliance_prefix", f"the appliance prefix must be {PREFIX_RULE}")
    if not VERSION.fullmatch(version):
        raise errors.Invalid.for_field("version", f"the version must be {VERSION_RULE}")


def _check_names_free(*, project: Project, stack: Stack, prefix: str, version: str, tiers: list[str]) -> None:
    """Refuse names the project's own catalog, a capture under way or a template holds already."""
    identifiers = [captured_identifier(prefix, tier) for tier in tiers]
    taken = (
        ApplianceVersion.objects.filter(
            appliance__feed__project=project,
            appliance__feed__format=Feed.Format.LOCAL,
            appliance__identifier__in=identifiers,
            version=version,
        )
        .values_list("appliance__identifier", flat=True)
        .first()
    )
    if taken:
        raise errors.Invalid.for_field(
            "version", f"'{taken}' already has a version '{version}' in this project's catalog: choose another version"
        )
    under_way = Capture.objects.filter(project=project, version=version).exclude(status__in=FINAL_STATUSES)
    for other in under_way.select_related("stack"):
        if other.stack is None:
            continue
        other_tiers = [tier.name for tier in TemplateDocument.from_json(other.stack.document).tiers]
        overlap = set(identifiers) & {captured_identifier(other.appliance_prefix, t) for t in other_tiers}
        if overlap:
            raise errors.Invalid.for_field(
                "version",
                f"another capture under way is making '{sorted(overlap)[0]}' version '{version}': "
                "wait for it, or choose another prefix or version",
            )
    name = captured_template_name(stack.name, version)
    if StackTemplate.objects.filter(project=project, name=name).exists():
        raise errors.Invalid.for_field(
            "version", f"project '{project.name}' already has a template called '{name}': choose another version"
        )
    if StackTemplate.objects.filter(project=project).count() >= settings.TEMPLATES_PER_PROJECT:
        raise errors.QuotaExceeded(
            f"project '{project.name}' may keep at most {settings.TEMPLATES_PER_PROJECT} templates, and a capture "
            "makes one: remove a template first"
        )


def capture_create(*, user: User, stack: Stack, appliance_prefix: str, version: str) -> Capture:
    """Accept a capture of ``stack``; the job copies its disks in the background.

    ``stack`` is one the caller may see (the view looked it up so); members and owners may capture it.
    """
    require_role(user, stack.project, Role.MEMBER)
    _check_format(appliance_prefix, version)
    made: list[Capture] = []

    def prepare(locked: Stack) -> tuple[int]:
        project = Project.objects.select_for_update().get(pk=locked.project_id)  # one capture request at a time
        sources = _sources(locked)
        _check_names_free(
            project=project,
            stack=locked,
            prefix=appliance_prefix,
            version=version,
            tiers=[source.tier.name for source in sources],
        )
        capture = Capture.objects.create(
            project=project,
            created_by=user if isinstance(user, Account) else None,
            stack=locked,
            source_name=locked.name,
            appliance_prefix=appliance_prefix,
            version=version,
            bytes_total=sum(source.disk_bytes() for source in sources),
        )
        made.append(capture)
        return (capture.pk,)

    stack_jobs.begin(
        user=user, stack=stack, action=CAPTURE, check=prepare, appliance_prefix=appliance_prefix, version=version
    )
    return made[0]


# --- the job ------------------------------------------------------------------------------------


@dataclass
class _Made:
    """What the job made so far: all of it goes again if the capture fails."""

    versions: list[ApplianceVersion] = field(default_factory=list)
    template: StackTemplate | None = None


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
        _fail(capture, "the stack changed before its capture began; ask again")
        return "failed"
    work = Path(settings.CAPTURE_DIR) / f"capture-{capture.pk}"
    made = _Made()
    try:
        copies = _copy_disks(capture, stack, work)
        _add_versions(capture, stack, copies, made)
        made.template = _add_template(capture, stack)
    except CaptureFailed as exc:
        return _give_up(capture, stack, made, str(exc))
    except Exception:
        logger.exception("capture %s of stack %s failed", capture.pk, stack.pk)
        return _give_up(capture, stack, made, UNEXPECTED)
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
    )
    return "ready"


def _copy_disks(capture: Capture, stack: Stack, work: Path) -> dict[str, DiskCopy]:
    """Every tier's disk, read with the tiers paused together; then the stack is given back."""
    sources = _sources(stack)
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


def _version_spec(capture: Capture, stack: Stack, source: _Source) -> OwnVersion:
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


def _add_versions(capture: Capture, stack: Stack, copies: dict[str, DiskCopy], made: _Made) -> None:
    for source in _sources(stack):
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


def captured_document(document: TemplateDocument, *, prefix: str, version: str, stack_name: str) -> TemplateDocument:
    """The stack's own document with each tier pointing at its captured appliance version."""
    tiers = tuple(
        replace(tier, appliance=captured_identifier(prefix, tier.name), version=version) for tier in document.tiers
    )
    note = f"Stack '{stack_name}' as captured (version {version})."
    description = f"{document.description} — {note}" if document.description else note
    return TemplateDocument(tiers=tiers, description=description[:MAX_DESCRIPTION_CHARS])


def template_source(document: TemplateDocument, *, stack_name: str) -> str:
    """The document as YAML a person can read and edit: only what each tier sets."""
    tiers = []
    for tier in document.tiers:
        entry: dict[str, object] = {"name": tier.name, "appliance": tier.appliance, "version": tier.version}
        for key in ("flavor", "vcpus", "memory_mib", "disk_gib"):
            value = getattr(tier, key)
            if value is not None:
                entry[key] = value
        if tier.count != 1:
            entry["count"] = tier.count
        if tier.depends_on:
            entry["depends_on"] = [
                {"tier": d.tier, "wait_for_port": True} if d.wait_for_port else d.tier for d in tier.depends_on
            ]
        if tier.publish:
            entry["publish"] = list(tier.publish)
        if tier.settings:
            entry["settings"] = dict(tier.settings)
        tiers.append(entry)
    body = yaml.safe_dump(
        {"description": document.description, "tiers": tiers}, sort_keys=False, allow_unicode=True, width=100
    )
    return f"# Captured from stack '{stack_name}': each tier starts from its disk as it was then.\n{body}"


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


# --- failing ------------------------------------------------------------------------------------


def _give_up(capture: Capture, stack: Stack, made: _Made, reason: str) -> str:
    """Remove what the capture made, give the stack back if it still waits, and say why."""
    problems = _undo(made)
    if Stack.objects.filter(pk=stack.pk, status=CAPTURE.busy).exists():
        stack_jobs.give_back(stack, busy=CAPTURE.busy, action="capture", reason=reason)
    else:
        stack_event(stack, f"capture failed: {reason}", is_error=True)
    _fail(capture, f"{reason}; {problems}" if problems else reason)
    return "failed"


def _fail(capture: Capture, reason: str) -> None:
    now = timezone.now()
    Capture.objects.filter(pk=capture.pk).exclude(status__in=FINAL_STATUSES).update(
        status=JobStatus.FAILED, error=reason[:2000], finished_at=now, updated_at=now
    )


def _undo(made: _Made) -> str:
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


# --- a worker that died ------------------------------------------------------------------------


def captures_watchdog(*, now: datetime | None = None) -> int:
    """End the captures whose worker died (no progress for longer than any task may run): what they
    made is removed and they say so. Their stack, left busy, is settled by the stacks' watchdog."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS)
    ended = 0
    for capture in Capture.objects.filter(status=JobStatus.RUNNING, updated_at__lt=cutoff).select_related("project"):
        problems = _undo(_made_by(capture))
        reason = "the worker making this capture stopped; nothing it made was kept"
        _fail(capture, f"{reason}; {problems}" if problems else reason)
        shutil.rmtree(Path(settings.CAPTURE_DIR) / f"capture-{capture.pk}", ignore_errors=True)
        ended += 1
    never = Capture.objects.filter(status=JobStatus.PENDING, created_at__lt=cutoff)
    for capture in never:
        _fail(capture, "the capture never started (its task was lost); ask again")
        ended += 1
    return ended


def _made_by(capture: Capture) -> _Made:
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
    return _Made(versions=list(versions), template=template)


__all__ = [
    "CAPTURE",
    "capture_create",
    "capture_get",
    "capture_job",
    "captured_document",
    "captured_identifier",
    "captured_template_name",
    "captures_visible_to",
    "captures_watchdog",
    "progress_percent",
    "template_source",
]

"""A project's own catalog served to other portals as a VMcast.

The feed lives at ``/vmcast/<project id>/<token>/feed.xml``: the token in the path is the only
credential (no session, no account), so a portal subscribing elsewhere needs nothing but the URL.
It is random (256 bits), made and replaced by the project's owners (``vmcast_rotate``), and shown
to its members and owners; viewers may browse the catalog but not hand its images out. Replacing
it, or revoking it, ends every URL given out before at once: the feed's and its images'.

Each ready, current version of the project's own catalog is one item; its enclosure is the cached
qcow2 the portal itself launches from, served as it is. The feed therefore names the digest of that
file (not of the file once brought in, which was converted), measured once per file and kept in
the shared cache (``served_files``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django.urls import reverse

from catalog import vmcast
from catalog.models import ApplianceVersion, CachedImage, Feed, ImageDelivery, image_source_key
from catalog.own_images import file_sha256
from portal import audit
from portal.models import Project, Role
from portal.scoping import User, require_role
from provisioning.name_rules import TIER_NAME

TOKEN_BYTES = 32
MEDIA_TYPE = "application/rss+xml; charset=utf-8"
IMAGE_MEDIA_TYPE = vmcast.IMAGE_MEDIA_TYPES["qcow2"]
# Compared with a wrong token when the project has none (or does not exist), so that every refusal
# costs the same comparison as a near miss.
_NO_TOKEN = "-" * 43
_DIGEST_KEY = "vmcast-digest:{path}:{size}:{mtime}:{inode}"


# --- the token --------------------------------------------------------------------------------


def vmcast_rotate(*, user: User, project: Project) -> Project:
    """Make the project's VMcast token, or replace it: every URL handed out before stops working."""
    require_role(user, project, Role.OWNER)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        replaced = bool(locked.vmcast_token)
        locked.vmcast_token = secrets.token_urlsafe(TOKEN_BYTES)
        locked.save(update_fields=["vmcast_token"])
        audit.record(actor=user, action="project.vmcast_rotate", target=locked, project=locked, replaced=replaced)
    return locked


def vmcast_revoke(*, user: User, project: Project) -> Project:
    """Stop serving the project's VMcast: its URLs answer 404 until an owner makes a new one."""
    require_role(user, project, Role.OWNER)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.vmcast_token:
            locked.vmcast_token = ""
            locked.save(update_fields=["vmcast_token"])
            audit.record(actor=user, action="project.vmcast_revoke", target=locked, project=locked)
    return locked


def token_matches(stored: str, given: str) -> bool:
    """Whether ``given`` is the project's token, in time that does not depend on where they differ.

    An empty stored token (none made, or revoked) matches nothing; it is still compared, with a
    stand-in, so that the answer takes the same time either way.
    """
    expected = stored or _NO_TOKEN
    same = hmac.compare_digest(expected.encode(), given.encode())
    return same and bool(stored)


def project_for_token(*, project_id: int, token: str) -> Project | None:
    """The project whose VMcast ``token`` opens, or None: a wrong, old or revoked token, another
    project's token, or no such project all answer alike."""
    project = Project.objects.filter(pk=project_id).first()
    return project if token_matches(project.vmcast_token if project else "", token) else None


def feed_path(project: Project) -> str:
    return reverse("vmcast-feed", kwargs={"project_id": project.pk, "token": project.vmcast_token})


def vmcast_url(project: Project) -> str | None:
    """The absolute URL of the project's VMcast, None while it has none.

    Built on ``PORTAL_BASE_URL``, the portal's address for links that leave it (as in mail): the URL
    is handed to other portals, so it must not depend on the address the asker happened to use.
    """
    if not project.vmcast_token:
        return None
    return f"{settings.PORTAL_BASE_URL}{feed_path(project)}"


def may_see_vmcast_url(role: str | None) -> bool:
    """Members and owners see the URL (they can bring images in and out anyway); viewers do not."""
    return role is not None and Role(role).rank >= Role.MEMBER.rank


# --- what the feed lists ----------------------------------------------------------------------


def served_versions(project: Project) -> list[ApplianceVersion]:
    """The versions of the project's own catalog another portal may take: delivered, their file
    kept, not withdrawn; the newest ``PORTAL_FEED_MAX_ITEMS`` (what one feed may hold)."""
    versions = (
        ApplianceVersion.objects.filter(
            appliance__feed__project=project,
            appliance__feed__format=Feed.Format.LOCAL,
            withdrawn=False,
            image__status=CachedImage.Status.READY,
            delivery__status=ImageDelivery.Status.DELIVERED,
            delivery__source=image_source_key(""),
        )
        .select_related("appliance", "image", "delivery")
        .order_by("-published_at", "-id")
    )
    return [v for v in versions[: settings.FEED_MAX_ITEMS] if v.image is not None and Path(v.image.path).is_file()]


def served_version(project: Project, version_id: int) -> ApplianceVersion | None:
    """One version the project's VMcast lists, or None (another project's, withdrawn, not ready...)."""
    return next((v for v in served_versions(project) if v.pk == version_id), None)


@dataclass(frozen=True)
class ServedFile:
    """A cached qcow2 as the VMcast serves it: its length and sha256."""

    size_bytes: int
    sha256: str


def _digest_key(path: Path) -> tuple[str, int]:
    """The cache key of the file's digest (its path, size, change time and inode name it) and its size."""
    facts = path.stat()
    name = hashlib.sha256(str(path).encode()).hexdigest()[:32]
    return _DIGEST_KEY.format(path=name, size=facts.st_size, mtime=facts.st_mtime_ns, inode=facts.st_ino), facts.st_size


def served_files(images: list[CachedImage]) -> dict[int, ServedFile]:
    """Each image's file as served, by image id, its digest measured once per file and kept in the shared
    cache (one read of the cache for them all). An image whose file is gone is left out."""
    keys: dict[int, tuple[str, int]] = {}
    for image in images:
        try:
            keys[image.pk] = _digest_key(Path(image.path))
        except OSError:
            continue
    cache = caches["shared"]
    known = cache.get_many([key for key, _size in keys.values()])
    found: dict[int, ServedFile] = {}
    measured: dict[str, str] = {}
    for image in images:
        if image.pk not in keys:
            continue
        key, size = keys[image.pk]
        digest = known.get(key) or measured.get(key)
        if digest is None:
            try:
                digest = measured[key] = file_sha256(Path(image.path))
            except OSError:
                continue
        found[image.pk] = ServedFile(size_bytes=size, sha256=digest)
    if measured:
        cache.set_many(measured, timeout=None)
    return found


def served_digest(image: CachedImage) -> str:
    """The sha256 of one cached qcow2 as served (``OSError`` when its file is gone)."""
    served = served_files([image]).get(image.pk)
    if served is None:
        raise FileNotFoundError(image.path)
    return served.sha256


@dataclass(frozen=True)
class RenderedFeed:
    body: bytes
    etag: str  # quoted, as the header carries it
    last_modified: datetime | None


def render_project_feed(*, project: Project, base_url: str) -> RenderedFeed:
    """The project's VMcast, its enclosures under ``base_url`` (scheme and host, no slash at the end)."""
    listed = served_versions(project)
    files = served_files([version.image for version in listed if version.image is not None])
    # A file gone since the versions were read is not served, so not listed.
    versions = [version for version in listed if version.image_id in files]
    body = vmcast.render_feed(
        title=f"{project.name}: own images",
        link=f"{base_url}{feed_path(project)}",
        description=f"Appliances uploaded to and captured in project {project.name}",
        items=[_item(v, files[v.image_id], project=project, base_url=base_url) for v in versions if v.image_id],
    )
    moments = [v.published_at for v in versions if v.published_at is not None]
    return RenderedFeed(
        body=body, etag=f'"{hashlib.sha256(body).hexdigest()}"', last_modified=max(moments) if moments else None
    )


def image_path(project: Project, version: ApplianceVersion) -> str:
    return reverse(
        "vmcast-image", kwargs={"project_id": project.pk, "token": project.vmcast_token, "version_id": version.pk}
    )


def _item(version: ApplianceVersion, served: ServedFile, *, project: Project, base_url: str) -> vmcast.FeedItem:
    appliance = version.appliance
    image = version.image
    assert image is not None  # served_versions keeps only versions with a ready image
    # A role that is no tier name would make the subscriber refuse the whole feed: left out instead.
    role = appliance.role if TIER_NAME.pattern.fullmatch(appliance.role or "") else ""
    return vmcast.FeedItem(
        appliance=appliance.identifier,
        title=appliance.title,
        description=appliance.description,
        version=version.version,
        url=f"{base_url}{image_path(project, version)}",
        size_bytes=served.size_bytes,
        sha256=served.sha256,
        disk_format="qcow2",
        arch=version.arch,
        min_ram_mib=version.min_ram_mib,
        min_vcpus=version.min_vcpus,
        service_port=version.service_port,
        role=role,
        published=version.published_at,
        virtual_size_bytes=image.virtual_size_bytes or None,
    )


__all__ = [
    "IMAGE_MEDIA_TYPE",
    "MEDIA_TYPE",
    "RenderedFeed",
    "may_see_vmcast_url",
    "project_for_token",
    "render_project_feed",
    "served_digest",
    "served_files",
    "served_version",
    "served_versions",
    "token_matches",
    "vmcast_revoke",
    "vmcast_rotate",
    "vmcast_url",
]

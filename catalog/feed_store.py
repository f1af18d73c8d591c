"""Writing an accepted feed into the catalog: in short transactions, with a few queries per batch.

A feed may list up to ``PORTAL_FEED_MAX_ITEMS`` appliance versions. Written item by item in one
transaction, a big one held the database for over a minute: on SQLite every other write (sign-ins,
launches, worker progress) waited and then failed with "database is locked". So the items are
written in batches of ``PORTAL_FEED_IMPORT_BATCH``, each one transaction of five statements
whatever its size (upserts, not a query per item), and every check that can refuse the feed runs
before the first write, so a refused feed still changes nothing.

Between batches the catalog holds some items new and some old; a worker that dies there leaves it
so until the next import, which writes every item again (each write is an upsert). Versions a feed
no longer lists stay, up to what one feed may list; past that the oldest of them go.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from catalog.errors import CatalogError
from catalog.feeds import ParsedFeed, ParsedItem, problem_list
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed

# Between batches the import lets go of the database for a moment: a writer waiting for SQLite's
# lock polls with a backoff and would otherwise rarely catch the gap before the next batch takes it
# (measured in benchmarks/feed_import.py: its worst wait fell from the whole import to one batch).
PAUSE_BETWEEN_BATCHES_SECONDS = 0.02

# What an import may change on a version it already has (never its image: see _refuse_swapped_images).
_VERSION_FIELDS = [
    "image_url",
    "size_bytes",
    "media_type",
    "disk_format",
    "arch",
    "min_ram_mib",
    "min_vcpus",
    "service_port",
    "published_at",
    "declared_virtual_bytes",
]


def store_feed(*, feed: Feed, parsed: ParsedFeed, batch_items: int | None = None) -> None:
    """Write ``parsed`` as ``feed``'s appliances and versions, ``batch_items`` items per transaction."""
    size = batch_items or settings.FEED_IMPORT_BATCH_ITEMS
    _refuse_swapped_images(feed=feed, items=parsed.items)
    for start in range(0, len(parsed.items), size):
        if start:
            time.sleep(PAUSE_BETWEEN_BATCHES_SECONDS)
        with transaction.atomic():
            _store_batch(feed=feed, items=parsed.items[start : start + size])
    _trim_to_limit(feed=feed, items=parsed.items, batch_items=size)


def _refuse_swapped_images(*, feed: Feed, items: Sequence[ParsedItem]) -> None:
    # A publisher must not swap the bytes (or how they are read) behind a version people already run.
    known = {
        (appliance, version): (sha256, disk_format)
        for appliance, version, sha256, disk_format in ApplianceVersion.objects.filter(appliance__feed=feed)
        .values_list("appliance__identifier", "version", "image__sha256", "image__source_format")
        .iterator()
    }
    problems = []
    for item in items:
        was = known.get((item.appliance, item.version))
        if was is not None and was != (item.sha256, item.disk_format):
            changed = "sha256" if was[0] != item.sha256 else "format"
            problems.append(
                f"appliance '{item.appliance}' version '{item.version}' changed its image ({changed}); "
                "publish a new version"
            )
    if problems:
        raise CatalogError(problem_list(problems))


def _store_batch(*, feed: Feed, items: Sequence[ParsedItem]) -> None:
    # The last item naming an appliance gives its title, description and role, as the feed reads.
    newest = {item.appliance: item for item in items}
    Appliance.objects.bulk_create(
        [
            Appliance(
                feed=feed, identifier=item.appliance, title=item.title, description=item.description, role=item.role
            )
            for item in newest.values()
        ],
        update_conflicts=True,
        unique_fields=["feed", "identifier"],
        update_fields=["title", "description", "role"],
    )
    appliances = dict(Appliance.objects.filter(feed=feed, identifier__in=newest).values_list("identifier", "pk"))
    # Keyed by content and declared format: a feed declaring known bytes as another format gets its
    # own row and cannot change the image other feeds' versions (other projects' launches) use.
    keys = {(item.sha256, item.disk_format) for item in items}
    CachedImage.objects.bulk_create(
        [CachedImage(sha256=sha256, source_format=disk_format) for sha256, disk_format in keys],
        ignore_conflicts=True,  # another feed's import may add the same image meanwhile
    )
    images = {
        (sha256, disk_format): pk
        for pk, sha256, disk_format in CachedImage.objects.filter(
            sha256__in={sha256 for sha256, _ in keys}
        ).values_list("pk", "sha256", "source_format")
    }
    ApplianceVersion.objects.bulk_create(
        [
            ApplianceVersion(
                appliance_id=appliances[item.appliance],
                version=item.version,
                image_id=images[(item.sha256, item.disk_format)],
                image_url=item.url,
                size_bytes=item.size_bytes,
                media_type=item.media_type,
                disk_format=item.disk_format,
                arch=item.arch,
                min_ram_mib=item.min_ram_mib,
                min_vcpus=item.min_vcpus,
                service_port=item.service_port,
                published_at=item.published,
                declared_virtual_bytes=item.virtual_size_bytes,
            )
            for item in items
        ],
        update_conflicts=True,
        unique_fields=["appliance", "version"],
        update_fields=_VERSION_FIELDS,
    )


def _trim_to_limit(*, feed: Feed, items: Sequence[ParsedItem], batch_items: int) -> None:
    """Past ``PORTAL_FEED_MAX_ITEMS`` stored versions, remove the oldest the feed no longer lists.

    A feed may drop old versions from its items while people still want them, so they stay; but a
    publisher rotating new items in every hour must not grow the catalog without end. None an
    instance was built from goes (those are kept for the instance's record), nor any the feed lists.
    """
    excess = ApplianceVersion.objects.filter(appliance__feed=feed).count() - settings.FEED_MAX_ITEMS
    if excess <= 0:
        return
    listed = {(item.appliance, item.version) for item in items}
    unlisted = [
        pk
        for pk, appliance, version in ApplianceVersion.objects.filter(appliance__feed=feed, instances__isnull=True)
        .order_by("pk")
        .values_list("pk", "appliance__identifier", "version")
        .iterator()
        if (appliance, version) not in listed
    ][:excess]
    for start in range(0, len(unlisted), batch_items):
        try:
            with transaction.atomic():
                ApplianceVersion.objects.filter(pk__in=unlisted[start : start + batch_items]).delete()
        except (ProtectedError, IntegrityError):
            continue  # a launch took one of them meanwhile: it stays, and the next import looks again
    Appliance.objects.filter(feed=feed, versions__isnull=True).delete()

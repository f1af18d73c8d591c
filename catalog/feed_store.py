"""Writing an accepted feed into the catalog: in short transactions, with a few queries per batch.

A feed may list up to ``PORTAL_FEED_MAX_ITEMS`` appliance versions. Written item by item in one
transaction, a big one held the database for over a minute: on SQLite every other write (sign-ins,
launches, worker progress) waited and then failed with "database is locked". So the items are
written in batches of ``PORTAL_FEED_IMPORT_BATCH``, each one transaction of five statements
whatever its size (upserts, not a query per item), and every check that can refuse the feed runs
before the first write, so a refused feed still changes nothing.

Between batches the catalog holds some items new and some old; a worker that dies there leaves it
so until the next import, which writes every item again (each write is an upsert). Versions a feed
no longer lists stay, marked withdrawn (stacks built from them keep running; launches prefer current
versions), up to what one feed may list; past that the oldest of them go. A version listed again is
current again.

An item without a checksum (``sha256`` empty) is pinned on its first download: its version has no
image until then, and an import never takes away the one its download pinned. Only a checksum the
feed gives later names its image (and it is refused if it names other bytes than were pinned).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from catalog.errors import CatalogError
from catalog.feeds import ParsedFeed, ParsedItem, problem_list
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed

_Key = tuple[str, str]  # (appliance identifier, version)

# Between batches the import lets go of the database for a moment: a writer waiting for SQLite's
# lock polls with a backoff and would otherwise rarely catch the gap before the next batch takes it
# (measured in benchmarks/feed_import.py: its worst wait fell from the whole import to one batch).
PAUSE_BETWEEN_BATCHES_SECONDS = 0.02

# What an import may change on a version it already has: never its image (see _refuse_swapped_images),
# and its checksum source only from pinned to the feed's (see _take_checksums).
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
    "package",
    "withdrawn",
]


def store_feed(*, feed: Feed, parsed: ParsedFeed, batch_items: int | None = None) -> None:
    """Write ``parsed`` as ``feed``'s appliances and versions, ``batch_items`` items per transaction."""
    size = batch_items or settings.FEED_IMPORT_BATCH_ITEMS
    now_checksummed = _refuse_swapped_images(feed=feed, items=parsed.items)
    for start in range(0, len(parsed.items), size):
        if start and connection.vendor == "sqlite":  # PostgreSQL's writers do not queue on one lock
            time.sleep(PAUSE_BETWEEN_BATCHES_SECONDS)
        with transaction.atomic():
            _store_batch(feed=feed, items=parsed.items[start : start + size], now_checksummed=now_checksummed)
    listed = {(item.appliance, item.version) for item in parsed.items}
    _withdraw_unlisted(feed=feed, listed=listed, batch_items=size)
    _trim_to_limit(feed=feed, listed=listed, batch_items=size)


def _image_format(item: ParsedItem) -> str:
    """How the image row of a checksummed item is keyed besides its sha256: a package by its kind (the
    sha256 is the package's; the disk inside is taken out when it is first fetched), a disk by the
    format its item declares."""
    return item.package if item.package != ApplianceVersion.Package.DISK else item.disk_format


def _checksum_source(item: ParsedItem) -> str:
    # Said by whether the feed gives a checksum, whatever else an item claims: a feed cannot say "uploaded".
    return ApplianceVersion.ChecksumSource.FEED if item.sha256 else ApplianceVersion.ChecksumSource.PINNED


def _refuse_swapped_images(*, feed: Feed, items: Sequence[ParsedItem]) -> set[_Key]:
    """Refuse the feed if a checksummed item names other bytes than its version has; return the pinned
    versions the feed now gives a checksum for (their image unknown yet, or the same bytes)."""
    # A publisher must not swap the bytes (or how they are read) behind a version people already run.
    # An item without a checksum names no bytes, so it swaps none: its version keeps its image, and a
    # version verified against the feed once stays so (its bytes were checked when it was downloaded).
    known = {
        (appliance, version): (sha256, disk_format, source)
        for appliance, version, sha256, disk_format, source in ApplianceVersion.objects.filter(appliance__feed=feed)
        .values_list("appliance__identifier", "version", "image__sha256", "image__source_format", "checksum_source")
        .iterator()
    }
    problems = []
    now_checksummed: set[_Key] = set()
    for item in items:
        key = (item.appliance, item.version)
        if not item.sha256 or key not in known:
            continue
        sha256, disk_format, source = known[key]
        if sha256 is None:
            now_checksummed.add(key)  # pinned, not downloaded yet: the feed's checksum names its image
        elif sha256 != item.sha256 or (_image_format(item) and disk_format != _image_format(item)):
            # (A format left unsaid is no change: the bytes' magic decided it when they were stored.)
            changed = "sha256" if sha256 != item.sha256 else "format"
            problems.append(
                f"appliance '{item.appliance}' version '{item.version}' changed its image ({changed}); "
                "publish a new version"
            )
        elif source == ApplianceVersion.ChecksumSource.PINNED:
            now_checksummed.add(key)  # the bytes its first download pinned are the ones the feed now names
    if problems:
        raise CatalogError(problem_list(problems))
    return now_checksummed


def _store_batch(*, feed: Feed, items: Sequence[ParsedItem], now_checksummed: set[_Key]) -> None:
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
    # Pinned items (no checksum) get no row: their bytes are unknown until the first download.
    keys = {(item.sha256, _image_format(item)) for item in items if item.sha256}
    images: dict[tuple[str, str], int] = {}
    if keys:
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
    groups: dict[tuple[str, ...], list[ParsedItem]] = {}
    for item in items:
        groups.setdefault(_fields_to_update(item), []).append(item)
    for fields, group in groups.items():
        _upsert_versions(group, appliances=appliances, images=images, fields=list(fields))
    checksummed = [item for item in items if (item.appliance, item.version) in now_checksummed]
    if checksummed:
        _take_checksums(items=checksummed, images=images, appliances=appliances)


def _fields_to_update(item: ParsedItem) -> tuple[str, ...]:
    """What a re-import may overwrite on ``item``'s version: not what its first download learnt.

    A package's sizing comes from the package (the feed's figures are defaults), and a format the
    item leaves unsaid was read from the bytes' magic.
    """
    learnt = set()
    if item.package != ApplianceVersion.Package.DISK:
        learnt |= {"min_ram_mib", "min_vcpus"}
    if not item.disk_format:
        learnt.add("disk_format")
    return tuple(field for field in _VERSION_FIELDS if field not in learnt)


# Every column a new version row is written with (all but its id), in the order of the rows below.
_VERSION_COLUMNS = ("appliance_id", "version", "image_id", "checksum_source", *_VERSION_FIELDS)


def _upsert_versions(
    items: Sequence[ParsedItem], *, appliances: dict[str, int], images: dict[tuple[str, str], int], fields: list[str]
) -> None:
    """Insert ``items``' versions, or update ``fields`` of those the feed has already.

    One statement run for every row (``executemany``), not ``bulk_create``: building the ORM's SQL
    for thousands of objects took most of a big import's store time (benchmarks/catalog.py).
    """
    quote = connection.ops.quote_name
    updates = ", ".join(f"{quote(field)} = excluded.{quote(field)}" for field in fields)
    # Names from the model and this module only; every value goes in as a parameter.
    statement = (
        f"INSERT INTO {quote(ApplianceVersion._meta.db_table)} ({', '.join(map(quote, _VERSION_COLUMNS))}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(_VERSION_COLUMNS))}) "
        f"ON CONFLICT ({quote('appliance_id')}, {quote('version')}) DO UPDATE SET {updates}"
    )
    moment = connection.ops.adapt_datetimefield_value
    in_order = operator.itemgetter(*_VERSION_COLUMNS)
    rows = [
        in_order(
            {
                "appliance_id": appliances[item.appliance],
                "version": item.version,
                # Taken by new versions only: an import never changes the image of one it has.
                "image_id": images[(item.sha256, _image_format(item))] if item.sha256 else None,
                "checksum_source": _checksum_source(item),
                "image_url": item.url,
                "size_bytes": item.size_bytes,
                "media_type": item.media_type,
                "disk_format": item.disk_format,
                "arch": item.arch,
                "min_ram_mib": item.min_ram_mib,
                "min_vcpus": item.min_vcpus,
                "service_port": item.service_port,
                "published_at": moment(item.published) if item.published else None,
                "declared_virtual_bytes": item.virtual_size_bytes,
                "package": item.package,
                "withdrawn": False,  # listed, so current (again)
            }
        )
        for item in items
    ]
    with connection.cursor() as cursor:
        cursor.executemany(statement, rows)


def _take_checksums(
    *, items: Sequence[ParsedItem], images: dict[tuple[str, str], int], appliances: dict[str, int]
) -> None:
    """Pinned versions whose items now give a checksum are verified against the feed from now on.

    One without an image yet takes the one the checksum names; one whose first download pinned
    the same bytes keeps its image. (Rare, so a query or two per version.) Each update holds its
    own condition: a first download that pinned other bytes meanwhile keeps them, pinned, and the
    next import refuses the feed for naming others.
    """
    pinned = ApplianceVersion.ChecksumSource.PINNED
    for item in items:
        version = ApplianceVersion.objects.filter(
            appliance_id=appliances[item.appliance], version=item.version, checksum_source=pinned
        )
        version.filter(image__isnull=True).update(
            image_id=images[(item.sha256, _image_format(item))], checksum_source=ApplianceVersion.ChecksumSource.FEED
        )
        version.filter(image__sha256=item.sha256).update(checksum_source=ApplianceVersion.ChecksumSource.FEED)


def _withdraw_unlisted(*, feed: Feed, listed: set[_Key], batch_items: int) -> None:
    """Mark withdrawn the versions the feed no longer lists (the ones it lists were made current as written)."""
    gone = [
        pk
        for pk, appliance, version in ApplianceVersion.objects.filter(appliance__feed=feed, withdrawn=False)
        .values_list("pk", "appliance__identifier", "version")
        .iterator()
        if (appliance, version) not in listed
    ]
    for start in range(0, len(gone), batch_items):
        ApplianceVersion.objects.filter(pk__in=gone[start : start + batch_items]).update(withdrawn=True)


def _trim_to_limit(*, feed: Feed, listed: set[_Key], batch_items: int) -> None:
    """Past ``PORTAL_FEED_MAX_ITEMS`` stored versions, remove the oldest the feed no longer lists.

    A feed may drop old versions from its items while people still want them, so they stay; but a
    publisher rotating new items in every hour must not grow the catalog without end. None an
    instance was built from goes (those are kept for the instance's record), nor any the feed lists.
    """
    excess = ApplianceVersion.objects.filter(appliance__feed=feed).count() - settings.FEED_MAX_ITEMS
    if excess <= 0:
        return
    unlisted = [
        pk
        for pk, appliance, version in ApplianceVersion.objects.filter(appliance__feed=feed, instances__isnull=True)
        .order_by("pk")
        .values_list("pk", "appliance__identifier", "version")
        .iterator()
        if (appliance, version) not in listed
    ][:excess]
    for start in range(0, len(unlisted), batch_items):
        batch = unlisted[start : start + batch_items]
        try:
            with transaction.atomic():
                # Locked, then looked at again: a launch that took one since is seen, and none can take
                # one now (its instance row waits for the lock, then finds the version gone). Deleting
                # a version a stack uses would empty that stack's record of it.
                list(ApplianceVersion.objects.select_for_update(of=("self",)).filter(pk__in=batch).values("pk"))
                ApplianceVersion.objects.filter(pk__in=batch, instances__isnull=True).delete()
        except (ProtectedError, IntegrityError):
            continue  # a launch took one of them meanwhile: it stays, and the next import looks again
    Appliance.objects.filter(feed=feed, versions__isnull=True).delete()

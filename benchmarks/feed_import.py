"""A big feed's import beside other writers, on the embedded SQLite default: how long they wait.

Run:  .venv/bin/python benchmarks/feed_import.py [--items 5000] [--batch 100]

A generated VMcast of ``--items`` appliances is parsed once, then stored twice into a fresh
SQLite database (WAL, IMMEDIATE transactions, as portal/settings.py sets it up), each time while a
second thread writes a small row every 10 ms, as sign-ins, launches and worker progress do:
  baseline  item by item in one transaction (an update_or_create per appliance, image and
            version), as imports were written before: every other write waits for all of it.
  portal    ``catalog.feed_store.store_feed``: ``--batch`` items per transaction, a few upserts each,
            and a short pause between batches in which waiting writers take their turn.
It prints each run's duration, its longest transaction, and the other writer's worst wait and
count of writes, and the ratio of the worst waits (portal / baseline; goal: 0.1x or less). A wait
past the SQLite timeout (20 s) is the "database is locked" error a user would see.
Everything lives in a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-feed-"))
os.environ.pop("DATABASE_URL", None)  # the embedded default: SQLite in PORTAL_VAR_DIR
os.environ["PORTAL_VAR_DIR"] = str(WORK)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
(WORK / "static").mkdir()

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import OperationalError, connection, transaction  # noqa: E402

from catalog import vmcast  # noqa: E402
from catalog.feed_store import store_feed  # noqa: E402
from catalog.feeds import ParsedFeed, parse_vmcast  # noqa: E402
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed  # noqa: E402
from portal.models import Project  # noqa: E402


@dataclass(frozen=True)
class Run:
    seconds: float
    longest_transaction: float
    worst_wait: float
    writes: int
    failed_writes: int


def generated_feed(count: int) -> bytes:
    items = [
        vmcast.FeedItem(
            appliance=f"app-{number}",
            title=f"Appliance {number}",
            description="generated",
            version="1.0",
            url=f"https://images.example.org/{number}.qcow2",
            size_bytes=1024,
            sha256=hashlib.sha256(str(number).encode()).hexdigest(),
            disk_format="qcow2",
        )
        for number in range(count)
    ]
    return vmcast.render_feed(title="Big feed", link="https://example.org", description="", items=items)


def item_by_item(feed: Feed, parsed: ParsedFeed) -> None:
    """The baseline: how imports wrote a feed before, one transaction for everything."""
    with transaction.atomic():
        for item in parsed.items:
            appliance, _ = Appliance.objects.update_or_create(
                feed=feed,
                identifier=item.appliance,
                defaults={"title": item.title, "description": item.description, "role": item.role},
            )
            image, _ = CachedImage.objects.get_or_create(sha256=item.sha256, source_format=item.disk_format)
            ApplianceVersion.objects.update_or_create(
                appliance=appliance,
                version=item.version,
                defaults={
                    "image_url": item.url,
                    "size_bytes": item.size_bytes,
                    "disk_format": item.disk_format,
                    "image": image,
                },
            )


class OtherWriter(threading.Thread):
    """Writes a small row every 10 ms on a connection of its own, timing each write."""

    def __init__(self, project_id: int) -> None:
        super().__init__(daemon=True)
        self.project_id = project_id
        self.stop = threading.Event()
        self.waits: list[float] = []
        self.failed = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    with transaction.atomic():
                        Project.objects.filter(pk=self.project_id).update(description=str(started))
                except OperationalError:  # "database is locked"
                    self.failed += 1
                self.waits.append(time.perf_counter() - started)
                time.sleep(0.01)
        finally:
            connection.close()


def measure(store, parsed: ParsedFeed, project_id: int) -> Run:  # type: ignore[no-untyped-def]
    Appliance.objects.all().delete()
    feed = Feed.objects.create(url=f"https://feeds.example.org/{secrets.token_hex(4)}.xml")
    begun: list[float] = []  # when each BEGIN IMMEDIATE (the write lock) was sent
    last: list[float] = [0.0]  # when the last statement inside a transaction finished

    def timed(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if sql.startswith("BEGIN"):
            begun.append(time.perf_counter())
        try:
            return execute(sql, params, many, context)
        finally:
            last.append(time.perf_counter())

    writer = OtherWriter(project_id)
    writer.start()
    time.sleep(0.2)
    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        store(feed, parsed)
    seconds = time.perf_counter() - started
    time.sleep(0.2)
    writer.stop.set()
    writer.join()
    assert ApplianceVersion.objects.filter(appliance__feed=feed).count() == len(parsed.items)
    # A transaction lasts from its BEGIN to the last statement before the next BEGIN (or the end).
    ends = [max(t for t in last if t < following) for following in [*begun[1:], float("inf")]]
    longest = max((end - begin for begin, end in zip(begun, ends, strict=True)), default=0.0)
    return Run(seconds, longest, max(writer.waits), len(writer.waits), writer.failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    try:
        call_command("migrate", verbosity=0)
        project_id = Project.objects.create(name="bench").pk
        parsed = parse_vmcast(generated_feed(args.items), max_items=args.items)
        baseline = measure(item_by_item, parsed, project_id)
        portal = measure(lambda feed, p: store_feed(feed=feed, parsed=p, batch_items=args.batch), parsed, project_id)
        print(f"{args.items} items, batches of {args.batch}, SQLite (WAL, IMMEDIATE)")
        for name, run in (("baseline", baseline), ("portal", portal)):
            print(
                f"  {name:8}  stored in {run.seconds:6.2f} s, longest transaction {run.longest_transaction:6.3f} s; "
                f"other writer: worst wait {run.worst_wait:6.3f} s over {run.writes} writes, "
                f"{run.failed_writes} failed"
            )
        print(f"  worst wait ratio portal/baseline: {portal.worst_wait / baseline.worst_wait:.3f}x (goal 0.1x or less)")
    finally:
        connection.close()
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()

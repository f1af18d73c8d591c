"""The catalog in and out: a big feed's import, an unchanged refresh, a disk's export.

Run:  .venv/bin/python benchmarks/catalog.py [--items 5000] [--rounds 5] [--only import|refresh|export]

  import   a generated VMcast of ``--items`` versions imported as a worker does it
           (``catalog.feeds.parse_feed`` then ``catalog.feed_store.store_feed``, into a fresh feed
           of the embedded SQLite default, or the PostgreSQL database in BENCH_DATABASE_URL) against
           bare feedparser parsing the same bytes, in alternating rounds; prints the medians of the
           parse alone and of the whole import, each / feedparser (goal: 1.2x or less).
  refresh  ``benchmarks/catalog_refresh.py``: an unchanged feed's refresh (one conditional GET
           answered 304) against a bare GET of the same URL (goal: under 50 ms).
  export   ``benchmarks/catalog_export.py``: a 1 GiB disk exported against ``qemu-img convert``
           of the same disk (goal: 0.8x its rate or better).
The last two run as processes of their own (each sets up its own database) and their lines are
passed through. Everything lives in temporary folders, removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-catalog-"))
if not os.environ.get("BENCH_DATABASE_URL"):
    os.environ.pop("DATABASE_URL", None)  # the embedded default: SQLite in PORTAL_VAR_DIR
else:
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
os.environ["PORTAL_VAR_DIR"] = str(WORK)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
(WORK / "static").mkdir()

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from catalog import vmcast  # noqa: E402
from catalog.feed_formats.rss import feedparser_reading  # noqa: E402
from catalog.feed_store import store_feed  # noqa: E402
from catalog.feeds import parse_feed  # noqa: E402
from catalog.models import CachedImage, Feed  # noqa: E402
from portal.models import Project  # noqa: E402

FEED_URL = "https://feeds.example.org/big.xml"


def generated_feed(count: int) -> bytes:
    items = [
        vmcast.FeedItem(
            appliance=f"app-{number}",
            title=f"Appliance {number}",
            description="A generated appliance with a sentence of description, as real feeds have.",
            version="1.0",
            url=f"https://images.example.org/{number}.qcow2",
            size_bytes=1024 * 1024,
            sha256=hashlib.sha256(str(number).encode()).hexdigest(),
            disk_format="qcow2",
            virtual_size_bytes=10 * 1024**3,
        )
        for number in range(count)
    ]
    return vmcast.render_feed(title="Big feed", link="https://example.org", description="", items=items)


def bare_parse(data: bytes) -> float:
    started = time.perf_counter()
    feedparser_reading(data)  # the very feedparser call parse_feed makes
    return time.perf_counter() - started


def portal_parse(data: bytes, items: int) -> float:
    started = time.perf_counter()
    parse_feed(data, url=FEED_URL, max_items=items)
    return time.perf_counter() - started


def portal_import(data: bytes, project: Project, items: int) -> float:
    feed = Feed.objects.create(project=project, url=FEED_URL)
    started = time.perf_counter()
    parsed = parse_feed(data, url=FEED_URL, max_items=items)
    store_feed(feed=feed, parsed=parsed)
    elapsed = time.perf_counter() - started
    stored = feed.appliances.count()
    if stored != items:
        raise SystemExit(f"the import stored {stored} appliances, not {items}")
    feed.delete()  # the next round imports into an empty catalog again
    CachedImage.objects.all().delete()
    return elapsed


def bench_import(items: int, rounds: int) -> None:
    call_command("migrate", verbosity=0)
    project = Project.objects.create(name="bench")
    data = generated_feed(items)
    bare: list[float] = []
    parsed: list[float] = []
    imported: list[float] = []
    for _ in range(rounds):
        bare.append(bare_parse(data))
        parsed.append(portal_parse(data, items))
        imported.append(portal_import(data, project, items))
    floor = statistics.median(bare)
    database = connection.vendor
    print(f"import of {items} items ({len(data) / 1024**2:.1f} MiB), medians of {rounds} alternating rounds:")
    print(f"  feedparser alone   {floor:.3f} s")
    print(
        f"  portal parse       {statistics.median(parsed):.3f} s  {statistics.median(parsed) / floor:.2f}x"
        "  (feedparser, then every item checked; goal: 1.2x or less)"
    )
    print(
        f"  portal import      {statistics.median(imported):.3f} s  {statistics.median(imported) / floor:.2f}x"
        f"  (parsed, checked and stored in {database})"
    )


def run_part(script: str) -> int:
    print(f"--- {script}", flush=True)
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script)], check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=("import", "refresh", "export"))
    arguments = parser.parse_args()
    failures = 0
    try:
        if arguments.only in (None, "import"):
            bench_import(arguments.items, arguments.rounds)
        if arguments.only in (None, "refresh"):
            failures += run_part("catalog_refresh.py") != 0
        if arguments.only in (None, "export"):
            failures += run_part("catalog_export.py") != 0
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""An unchanged feed's refresh (the server answers 304) against a bare HTTP GET of the same URL.

Run:  .venv/bin/python benchmarks/catalog_refresh.py [--items 200] [--rounds 50]

A generated VMcast of ``--items`` appliances is served from a separate process on 127.0.0.1, with
an ETag and Last-Modified; it answers 304 to a request that sends them back. The feed is imported
once (so the portal holds its validators), then each round measures, in alternating order so drift
on a noisy machine hits all alike:
  bare GET      ``http.client`` GET of the URL, the whole feed read: the floor of any fetch.
  bare 304      the same GET sending the validators back: one round trip, no body.
  refresh       ``catalog.tasks.import_feed`` as the import worker runs it: load the feed, mark it
                importing, the guarded conditional fetch (address checks, deadline, size cap), the
                304, the feed marked ok; nothing parsed, nothing stored.
A few rounds of a changed feed (the server ignores the validators: fetch, parse and store every
item again) show what the 304 saves. It prints the medians, the refresh's ratio to the bare GET,
and the goal (a refresh under 50 ms). Django runs on the embedded SQLite default in a temporary
folder, removed at the end with the server.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import multiprocessing
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-refresh-"))
os.environ.pop("DATABASE_URL", None)  # the embedded default: SQLite in PORTAL_VAR_DIR
os.environ["PORTAL_VAR_DIR"] = str(WORK)
os.environ["PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS"] = "127.0.0.1"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
(WORK / "static").mkdir()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from catalog import vmcast  # noqa: E402
from catalog.models import ApplianceVersion, Feed  # noqa: E402
from catalog.tasks import import_feed  # noqa: E402

ETAG = '"bench-1"'
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
GOAL_MS = 50.0


def generated_feed(count: int) -> bytes:
    items = [
        vmcast.FeedItem(
            appliance=f"app-{number}",
            title=f"Appliance {number}",
            description="generated for the refresh benchmark",
            version="1.0",
            url=f"https://images.example.org/{number}.qcow2",
            size_bytes=1024,
            sha256=hashlib.sha256(str(number).encode()).hexdigest(),
            disk_format="qcow2",
        )
        for number in range(count)
    ]
    return vmcast.render_feed(title="Refresh bench", link="https://example.org", description="", items=items)


def serve(body: bytes, ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """``/feed.xml`` answers 304 to its own validators; ``/always.xml`` always sends the whole feed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            unchanged = self.path == "/feed.xml" and self.headers.get("If-None-Match") == ETAG
            self.send_response(304 if unchanged else 200)
            self.send_header("ETag", ETAG)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.send_header("Content-Length", "0" if unchanged else str(len(body)))
            self.end_headers()
            if not unchanged:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ready.put(httpd.server_address[1])
    httpd.serve_forever()


def bare_get(url: str, headers: dict[str, str]) -> int:
    """A plain GET: no address checks, no deadline; the body read to its end. Returns the status."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
    try:
        conn.request("GET", parts.path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--changed-rounds", type=int, default=5)
    args = parser.parse_args()
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    body = generated_feed(args.items)
    server = multiprocessing.Process(target=serve, args=(body, ready), daemon=True)
    try:
        server.start()
        base = f"http://127.0.0.1:{ready.get(timeout=10)}"
        settings.FEED_MAX_ITEMS = max(settings.FEED_MAX_ITEMS, args.items)
        call_command("migrate", verbosity=0)
        feed = Feed.objects.create(url=f"{base}/feed.xml")
        assert import_feed(feed.pk).startswith("ok: imported"), Feed.objects.get(pk=feed.pk).last_error
        feed.refresh_from_db()
        assert feed.etag == ETAG, "the first import kept no validators"
        conditional = {"If-None-Match": ETAG, "If-Modified-Since": LAST_MODIFIED}

        def refresh() -> None:
            outcome = import_feed(feed.pk)
            if "unchanged" not in outcome:
                raise SystemExit(f"the refresh was not answered 304: {outcome}")

        def get_whole() -> None:
            assert bare_get(feed.url, {}) == 200

        def get_304() -> None:
            assert bare_get(feed.url, conditional) == 304

        work = {"bare GET": get_whole, "bare 304": get_304, "refresh": refresh}
        times: dict[str, list[float]] = {name: [] for name in work}
        for run in work.values():  # one unmeasured round: imports, connections, caches
            run()
        for index in range(args.rounds):
            order = list(work) if index % 2 == 0 else list(reversed(work))
            for name in order:
                times[name].append(timed(work[name]))

        changed_feed = Feed.objects.create(url=f"{base}/always.xml")
        import_feed(changed_feed.pk)
        changed = [timed(lambda: import_feed(changed_feed.pk)) for _ in range(args.changed_rounds)]
        assert ApplianceVersion.objects.filter(appliance__feed=changed_feed).count() == args.items

        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"feed of {args.items} items ({len(body) // 1024} KiB), {args.rounds} rounds, SQLite (embedded default)")
        print(f"  bare GET, whole feed (200):            median {medians['bare GET']:7.2f} ms")
        print(f"  bare GET with validators (304):        median {medians['bare 304']:7.2f} ms")
        print(f"  portal refresh, unchanged (304):       median {medians['refresh']:7.2f} ms")
        print(f"  portal refresh, changed (parse+store): median {statistics.median(changed):7.2f} ms")
        ratio = medians["refresh"] / medians["bare GET"]
        verdict = "met" if medians["refresh"] < GOAL_MS else "missed"
        print(f"  ratio refresh/bare GET: {ratio:.2f}x; goal: a refresh under {GOAL_MS:g} ms ({verdict})")
    finally:
        connection.close()
        if server.is_alive():
            server.terminate()
            server.join(timeout=5)
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Image download through the portal's fetch-and-verify pipeline, against curl writing the same file.

Run:  .venv/bin/python benchmarks/fetch.py [--size-mib 1024] [--rounds 3]

It writes a file of random bytes into a temporary folder and serves it from a separate process
on 127.0.0.1 (kernel sendfile, so the server is not what is measured). Each round then downloads
it twice, in alternating order so drift on a noisy machine hits both alike:
  curl    ``curl -o FILE``: the floor, what one well-made client does (no checksum).
  portal  ``catalog.fetch.fetch_to_file`` as image downloads use it: resolve and check the address,
          the wall-clock deadline and size cap, sha256 while streaming, writing the file, progress
          reported about once a second; then the checksum compared with the expected one.
Both write into the same temporary folder, which is removed at the end. It prints the median rate
of each and the ratio portal/curl (goal: 0.8x or more), and the CPU time each spent per GiB,
which explains the ratio on a busy machine (the portal also hashes every byte; curl does not).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from catalog.fetch import FetchPolicy, fetch_to_file
from portal import throttle

MIB = 1024 * 1024
POLICY = FetchPolicy(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout_seconds=30, transfer_seconds=600)


def make_image(path: Path, size_mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mib // 16):
            block = os.urandom(16 * MIB)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def serve(path: str, ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            size = os.path.getsize(path)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            with open(path, "rb") as source:
                self.connection.sendfile(source)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ready.put(httpd.server_address[1])
    httpd.serve_forever()


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def with_curl(url: str, destination: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``curl -o``."""
    cpu, started = cpu_seconds(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(["curl", "--silent", "--show-error", "--fail", "--output", str(destination), url], check=True)
    return time.perf_counter() - started, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu


def with_portal(url: str, destination: Path, expected: str) -> tuple[float, float]:
    """Wall-clock and CPU seconds of the fetch-and-verify pipeline (the server runs in another process)."""
    cpu, started = cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    result = fetch_to_file(
        url, destination, policy=POLICY, max_bytes=8 * 1024 * MIB, progress=throttle.every(1.0, lambda d, t: None)
    )
    if result.sha256 != expected:
        raise SystemExit(f"sha256 mismatch: {result.sha256} != {expected}")
    return time.perf_counter() - started, cpu_seconds(resource.RUSAGE_SELF) - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary folder goes (default: $TMPDIR)")
    options = parser.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is not installed (Debian package curl)")
    work = Path(tempfile.mkdtemp(prefix="fetch-bench-", dir=options.dir))
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = None
    try:
        image = work / "image.raw"
        expected = make_image(image, options.size_mib)
        server = multiprocessing.Process(target=serve, args=(str(image), ready), daemon=True)
        server.start()
        url = f"http://127.0.0.1:{ready.get(timeout=10)}/image.raw"
        seconds: dict[str, list[float]] = {"curl": [], "portal": []}
        cpu: dict[str, list[float]] = {"curl": [], "portal": []}
        for index in range(options.rounds):
            order = ("curl", "portal") if index % 2 == 0 else ("portal", "curl")
            for which in order:
                destination = work / f"{which}.out"
                took, used = with_curl(url, destination) if which == "curl" else with_portal(url, destination, expected)
                if destination.stat().st_size != image.stat().st_size:
                    raise SystemExit(f"{which} wrote {destination.stat().st_size} bytes")
                destination.unlink()
                seconds[which].append(took)
                cpu[which].append(used)
            rates = {which: options.size_mib / values[-1] for which, values in seconds.items()}
            print(f"round {index + 1}: curl {rates['curl']:.0f} MiB/s, portal {rates['portal']:.0f} MiB/s", flush=True)
        gib = options.size_mib / 1024
        curl = options.size_mib / statistics.median(seconds["curl"])
        portal = options.size_mib / statistics.median(seconds["portal"])
        curl_cpu, portal_cpu = (statistics.median(cpu[which]) / gib for which in ("curl", "portal"))
        print(f"curl   (writes the file):                 median {curl:.0f} MiB/s, CPU {curl_cpu:.2f} s/GiB")
        print(f"portal (guarded fetch + sha256 + write):  median {portal:.0f} MiB/s, CPU {portal_cpu:.2f} s/GiB")
        print(f"ratio portal/curl: {portal / curl:.2f}x (goal: 0.80x or more)")
    finally:
        if server is not None:
            server.terminate()
            server.join(timeout=5)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

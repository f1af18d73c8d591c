"""VNC console proxy against websockify: throughput and added latency, on this machine, in one run.

Run:  .venv/bin/python benchmarks/console.py [--rounds 7] [--mib 512] [--pings 2000]

No VM. A process of fake VNC servers (``benchmarks/console_peers.py``) listens on 127.0.0.1: one
wants VNC authentication as the portal's VMs do, one speaks no RFB security at all. In front of them:
  proxy       the portal's ASGI app under a real daphne process on a free loopback port, with its own
              SQLite database in a temporary folder, holding a running instance whose VNC port is the
              fake server's; each connection takes a fresh ticket from the tickets service and opens
              ``/ws/consoles/vnc/?ticket=...``. The proxy answers the server's DES challenge itself
              and offers the client security type None, which the client chooses.
  websockify  ``websockify 127.0.0.1:PORT 127.0.0.1:RAW`` (PyPI), in front of the server without
              security, as noVNC's own proxy is usually run.
  direct      plain TCP to the server without security: the floor for latency.
After the security handshake every path does the same (the ``websockets`` client offering the
``binary`` subprotocol, as noVNC does, no compression): ClientInit/ServerInit, a short warm-up, then
  throughput  ``--mib`` MiB from the server to the client as framebuffer-update-sized writes of
              64 KiB to 1 MiB (what a changing screen is), timed from the request to the last byte;
  latency     ``--pings`` round trips of a 16-byte message, client -> server -> client, one at a time
              (a key press and the small update it causes).
"Added" latency is a path's percentile minus the direct path's, measured in the same round. Paths
alternate in order every round, so drift on a noisy machine hits all alike; the figures are medians
over rounds, with the load average printed each round.

Where the time goes: per MiB of the throughput transfer, the CPU time (user and system) and minor
page faults of the proxy's processes (daphne; websockify's parent and its per-connection child), of
this client and of the fake server, and the proxy's peak RSS. On a 2-core machine the three
processes of a path share the cores, so a path's throughput follows its CPU per MiB; the page
faults and the peak RSS show data piling up in the proxy's buffers.

Every process started here runs in a process group of its own and is stopped by it (the group's id is
the pid it was started with); the temporary folder with the database and the logs is removed at the
end (kept, and named, when the run fails).
Goal: at least 0.8x websockify's throughput and under 2 ms added latency at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-console-"))
(WORK / "static").mkdir()  # what collectstatic would make; whitenoise warns without it
# The run's own database and settings, for this process and the daphne it starts (which inherits them).
os.environ["DATABASE_URL"] = f"sqlite:///{WORK / 'portal.sqlite3'}"
os.environ["PORTAL_VAR_DIR"] = str(WORK)
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
os.environ["PORTAL_CONSOLE_MAX_PER_USER"] = "100"
os.environ.pop("DJANGO_DEBUG", None)
os.environ.pop("REDIS_URL", None)  # the in-memory channel layer: one daphne process, nothing shared

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.console_client import MIB, WARMUP_BYTES, WARMUP_PINGS, Sample, direct, through_websocket  # noqa: E402
from benchmarks.processes import (  # noqa: E402
    START_TIMEOUT_SECONDS,
    first_line,
    free_port,
    load,
    start,
    stop,
    wait_for_port,
)
from portal.models import Project, Role  # noqa: E402
from portal.scoping import Account  # noqa: E402
from portal.services import membership_set  # noqa: E402
from provisioning.consoles import tickets  # noqa: E402
from provisioning.models import Instance, Stack, Status  # noqa: E402
from tests.factories import ApplianceVersionFactory, HostFactory  # noqa: E402

PATHS = ("direct", "proxy", "websockify")


# --- the portal's side ------------------------------------------------------------------------------


def set_up(vnc_port: int, password: str) -> tuple[Account, Instance]:
    """The database, a member of a project, and a running instance whose VNC server is the fake one."""
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password=secrets.token_urlsafe(16))
    # There is no project service; projects are made by operators in the admin or like this.
    project = Project.objects.create(name="bench")
    owner = get_user_model().objects.create_superuser("bench-owner", password=secrets.token_urlsafe(16))
    membership_set(actor=owner, project=project, username=user.get_username(), role=Role.MEMBER)
    host = HostFactory(name="bench-console", uri="test:///default", console_address="127.0.0.1")
    stack = Stack.objects.create(
        project=project, name="console", status=Status.RUNNING, expires_at=timezone.now() + timedelta(hours=2)
    )
    instance = Instance.objects.create(
        stack=stack,
        name="console-web-1",
        role="web",
        appliance_version=ApplianceVersionFactory(),
        host=host,
        vcpus=1,
        memory_mib=128,
        status=Status.RUNNING,
        domain_name="bench-console",
        vnc_port=vnc_port,
        vnc_password=password,
    )
    return user, instance


# --- the run ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    user: Account
    instance: Instance
    daphne_port: int
    daphne_pid: int
    websockify_port: int
    websockify_pid: int
    raw_port: int
    peers_pid: int


def measure(which: str, setup: Setup, total: int, pings: int) -> Sample:
    """One connection on ``which``; a path that stalls (under 10 MiB/s, or 10 ms a round trip) ends the run."""
    server: dict[str, int | None] = {"client": None, "server": setup.peers_pid}
    if which == "direct":
        work = direct(setup.raw_port, total=total, pings=pings, groups=server)
    elif which == "proxy":
        ticket = tickets.console_ticket_issue(user=setup.user, instance=setup.instance, kind="vnc").ticket
        url = f"ws://127.0.0.1:{setup.daphne_port}/ws/consoles/vnc/?ticket={ticket}"
        groups = {"proxy": setup.daphne_pid, **server}
        work = through_websocket(url, rfb_security=True, total=total, pings=pings, groups=groups)
    else:
        url = f"ws://127.0.0.1:{setup.websockify_port}/"
        groups = {"proxy": setup.websockify_pid, **server}
        work = through_websocket(url, rfb_security=False, total=total, pings=pings, groups=groups)
    limit = START_TIMEOUT_SECONDS + (total + WARMUP_BYTES) / MIB / 10 + (pings + WARMUP_PINGS) / 100

    async def bounded() -> Sample:
        return await asyncio.wait_for(work, limit)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        raise SystemExit(f"{which}: no result within {limit:.0f} s (logs in {WORK})") from None


def run_rounds(setup: Setup, rounds: int, total: int, pings: int) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {path: [] for path in PATHS}
    for index in range(rounds):
        order = PATHS if index % 2 == 0 else PATHS[::-1]
        for which in order:
            samples[which].append(measure(which, setup, total, pings))
        floor = samples["direct"][-1]
        parts = [
            f"{which} {samples[which][-1].mib_per_s:6.0f} MiB/s, +{samples[which][-1].p50 - floor.p50:.3f}"
            f"/+{samples[which][-1].p99 - floor.p99:.3f} ms"
            for which in ("proxy", "websockify")
        ]
        print(
            f"round {index + 1} (load {load()}): {'; '.join(parts)}; "
            f"direct {floor.mib_per_s:.0f} MiB/s, rtt {floor.p50:.3f}/{floor.p99:.3f} ms",
            flush=True,
        )
    return samples


def report(samples: dict[str, list[Sample]], total: int) -> None:
    floor = samples["direct"]
    mib = total / MIB

    def added(which: str, percentile: str) -> float:
        return statistics.median(
            getattr(s, percentile) - getattr(f, percentile) for s, f in zip(samples[which], floor, strict=True)
        )

    def per_mib(which: str, process: str) -> str:
        if process not in samples[which][0].used:
            return f"{'-':<19}"
        user = statistics.median(s.used[process].user * 1000 / mib for s in samples[which])
        system = statistics.median(s.used[process].system * 1000 / mib for s in samples[which])
        faults = statistics.median(s.used[process].faults / mib for s in samples[which])
        return f"{user:4.2f}+{system:4.2f} {faults:6.1f}    "

    print(f"\nmedians over {len(floor)} rounds ({mib:.0f} MiB streamed, {len(floor[0].rtts_ms)} round trips each):")
    print(f"  {'':11} {'MiB/s':>6} {'added p50':>11} {'added p99':>11} {'KiB/message':>12}")
    figures = {}
    for which in ("proxy", "websockify"):
        figures[which] = (
            statistics.median(s.mib_per_s for s in samples[which]),
            added(which, "p50"),
            added(which, "p99"),
        )
        rate, p50, p99 = figures[which]
        piece = statistics.median(total / s.pieces / 1024 for s in samples[which])
        print(f"  {which:11} {rate:6.0f} {p50:8.3f} ms {p99:8.3f} ms {piece:12.1f}")
    print(
        f"  {'direct TCP':11} {statistics.median(s.mib_per_s for s in floor):6.0f}   (the round trip itself: "
        f"p50 {statistics.median(s.p50 for s in floor):.3f} ms, p99 {statistics.median(s.p99 for s in floor):.3f} ms)"
    )
    print("per MiB streamed: CPU ms (user+system) and minor page faults; the proxy's peak RSS")
    print(f"  {'':11} {'proxy':19} {'client':19} {'server':19} {'peak RSS':>8}")
    for which in ("proxy", "websockify", "direct"):
        peak = max(s.used["proxy"].peak_rss_mib for s in samples[which]) if which != "direct" else 0
        print(
            f"  {which:11} {per_mib(which, 'proxy')} {per_mib(which, 'client')} {per_mib(which, 'server')} "
            + (f"{peak:5.0f} MiB" if peak else "")
        )
    (rate, p50, p99), (ws_rate, ws_p50, ws_p99) = figures["proxy"], figures["websockify"]
    print(f"throughput proxy/websockify: {rate / ws_rate:.2f}x (goal: 0.80x or more)")
    print(
        f"added latency: proxy p50 {p50:.3f} ms (goal: under 2 ms), p99 {p99:.3f} ms; "
        f"websockify p50 {ws_p50:.3f} ms, p99 {ws_p99:.3f} ms; proxy/websockify at p50 {p50 / ws_p50:.2f}x"
    )
    print(f"goal {'met' if rate >= 0.8 * ws_rate and p50 < 2.0 else 'MISSED'}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--mib", type=int, default=512, help="MiB streamed per path and round")
    parser.add_argument("--pings", type=int, default=2000, help="round trips per path and round")
    try:
        args = parser.parse_args()
        if args.rounds < 1 or not 1 <= args.mib <= 4000 or args.pings < 100:
            parser.error("--rounds must be 1 or more, --mib 1 to 4000, --pings 100 or more")
    except SystemExit:
        shutil.rmtree(WORK, ignore_errors=True)
        raise
    signal.signal(signal.SIGTERM, _interrupt)  # so the clean-up below runs
    load_before = load()
    print(
        f"daphne {version('daphne')}, websockify {version('websockify')}, websockets {version('websockets')}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load_before}",
        flush=True,
    )
    password = secrets.token_urlsafe(6)[:8]
    started: list[subprocess.Popen[bytes]] = []
    failed, interrupted = True, False
    try:
        peers = start(
            [sys.executable, "-m", "benchmarks.console_peers"],
            WORK / "peers.log",
            pipe_stdout=True,
            env={**os.environ, "CONSOLE_BENCH_PASSWORD": password},
        )
        started.append(peers)
        _word, vnc, raw = first_line(peers, "the fake VNC servers").split()
        vnc_port, raw_port = int(vnc), int(raw)
        user, instance = set_up(vnc_port, password)
        daphne_port, websockify_port = free_port(), free_port()
        daphne = start(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(daphne_port), "portal.asgi:application"],
            WORK / "daphne.log",
        )
        started.append(daphne)
        websockify = start(
            [
                str(Path(sys.executable).parent / "websockify"),
                f"127.0.0.1:{websockify_port}",
                f"127.0.0.1:{raw_port}",
            ],
            WORK / "websockify.log",
        )
        started.append(websockify)
        wait_for_port(daphne_port, daphne, "daphne")
        wait_for_port(websockify_port, websockify, "websockify")
        setup = Setup(user, instance, daphne_port, daphne.pid, websockify_port, websockify.pid, raw_port, peers.pid)
        measure("proxy", setup, WARMUP_BYTES, 100)  # the first socket imports and connects what later ones reuse
        measure("websockify", setup, WARMUP_BYTES, 100)
        samples = run_rounds(setup, args.rounds, args.mib * MIB, args.pings)
        report(samples, args.mib * MIB)
        failed = False
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        for process in reversed(started):
            stop(process)
        connections.close_all()
        print(f"load average (1/5/15 min): {load_before} at the start, {load()} at the end", flush=True)
        if failed and not interrupted:
            print(f"logs and database kept in {WORK}", file=sys.stderr)
        else:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()

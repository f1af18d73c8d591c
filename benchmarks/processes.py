"""The machine's side of a benchmark run: free ports, child processes in groups of their own, what
they use (CPU, page faults, peak memory), and the load average to print beside every figure."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 30
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice, outside the portal's publishing range)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    command: list[str], log: Path, *, pipe_stdout: bool = False, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A process in a session (and process group) of its own, so stopping it stops its children too.

    Its output goes to ``log`` (standard output to a pipe with ``pipe_stdout``); it runs in the checkout.
    """
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE if pipe_stdout else out,
            stderr=out,
            start_new_session=True,
        )


def first_line(process: subprocess.Popen[bytes], what: str) -> str:
    """The first line ``process`` prints, waiting at most ``START_TIMEOUT_SECONDS``."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
    line = process.stdout.readline().decode() if ready else ""
    if not line:
        raise SystemExit(f"{what} did not start (see its log)")
    return line


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group the process leads (its pid), then SIGKILL if it has not gone in 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode} (see its log)")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {START_TIMEOUT_SECONDS} s")


@dataclass(frozen=True)
class Usage:
    """What processes have used so far: CPU seconds in user and system mode, minor page faults, peak RSS."""

    user: float = 0.0
    system: float = 0.0
    faults: int = 0
    peak_rss_mib: float = 0.0

    def __sub__(self, before: Usage) -> Usage:
        return Usage(
            self.user - before.user, self.system - before.system, self.faults - before.faults, self.peak_rss_mib
        )


def _usage_of(proc: Path) -> Usage:
    # After the name: state, ppid, pgrp, session, tty, tpgid, flags, minflt (7), ..., utime (11), stime (12).
    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    peak = 0.0
    for line in (proc / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return Usage(int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS, int(fields[7]), peak)


def usage(group: int | None) -> Usage:
    """The live processes of process group ``group`` added up (the largest peak RSS); None: this process."""
    if group is None:
        return _usage_of(Path("/proc/self"))
    total = Usage()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            used = _usage_of(proc)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        total = Usage(
            total.user + used.user,
            total.system + used.system,
            total.faults + used.faults,
            max(total.peak_rss_mib, used.peak_rss_mib),
        )
    return total


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())

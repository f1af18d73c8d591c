"""qemu-img runs for disks going out of the portal: reading an overlay's header, rebasing it, converting it.

The same care as ``catalog.images`` takes with images coming in: ``-f`` always given, absolute paths
only (a relative name can parse as ``json:``, ``nbd:``...), and every run under CPU, memory,
file-size and wall-clock limits. An overlay comes from a host's pool: its header was written by QEMU,
not by the guest, but it is read as if it could be anything all the same. A disk can be large, so
the CPU and wall limits of a conversion grow with its size, and it reports its progress.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from portal.moments import duration_text

logger = logging.getLogger(__name__)

QEMU_IMG = "qemu-img"
GIB = 1024**3
MIB = 1024**2
# Reading a header needs little memory; converting starts a pool of I/O threads whose stacks
# reserve 8 MiB each (RLIMIT_AS counts reservations), as catalog.images measured.
_INFO_MEMORY_BYTES = GIB
_CONVERT_MEMORY_BYTES = 4 * GIB
_INFO_SECONDS = 60
# A streamOptimized VMDK deflates every cluster: about 20 s of CPU per GiB of data on these machines.
_CPU_BASE_SECONDS = 300
_CPU_SECONDS_PER_GIB = 60
# Headroom of an output over what it holds: qcow2 metadata, a VMDK's grain tables and footer.
_OUTPUT_SLACK_BYTES = 64 * MIB

OUTPUT_FORMATS = ("qcow2", "raw", "vmdk")
_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


class ConvertError(Exception):
    """qemu-img failed or was stopped; ``str()`` says so without local paths, ``detail`` is for logs."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class OverlayFacts:
    virtual_size_bytes: int


def _absolute(path: Path) -> str:
    if not path.is_absolute():
        raise ConvertError("a disk's path must be absolute (qemu-img reads other names as URLs or options)")
    return str(path)


def _limits(*, memory_bytes: int, cpu_seconds: int, file_bytes: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))

    return apply


def _run(arguments: list[str], *, memory_bytes: int, cpu_seconds: int, file_bytes: int, wall_seconds: int) -> str:
    try:
        completed = subprocess.run(  # noqa: S603 - fixed program, arguments are a list
            [QEMU_IMG, *arguments],
            capture_output=True,
            text=True,
            timeout=wall_seconds,
            preexec_fn=_limits(memory_bytes=memory_bytes, cpu_seconds=cpu_seconds, file_bytes=file_bytes),
            check=False,
        )
    except FileNotFoundError:
        raise ConvertError("qemu-img is not installed (Debian package qemu-utils)") from None
    except subprocess.TimeoutExpired:
        raise ConvertError(f"qemu-img {arguments[0]} took longer than {duration_text(wall_seconds)}") from None
    _check_exit(arguments[0], completed.returncode, completed.stderr, file_bytes)
    return completed.stdout


def _check_exit(command: str, returncode: int, stderr: str, file_bytes: int) -> None:
    if returncode == 0:
        return
    if returncode == -signal.SIGXFSZ or "File too large" in stderr:
        raise ConvertError(f"qemu-img {command} stopped: its output would be more than {file_bytes} bytes")
    if returncode == -signal.SIGXCPU:
        raise ConvertError(f"qemu-img {command} used up its CPU time")
    # qemu-img's own words quote local paths: operators' logs only.
    raise ConvertError(f"qemu-img {command} failed", detail=stderr.strip()[:1000])


def overlay_facts(path: Path) -> OverlayFacts:
    """Read a downloaded overlay's header (its backing file not opened); refuse anything but a plain qcow2."""
    with path.open("rb") as handle:
        if handle.read(4) != b"QFI\xfb":
            raise ConvertError("the disk downloaded from the host is not a qcow2 image")
    info = json.loads(
        _run(
            ["info", "-f", "qcow2", "-U", "--output=json", _absolute(path)],
            memory_bytes=_INFO_MEMORY_BYTES,
            cpu_seconds=_INFO_SECONDS,
            file_bytes=0,
            wall_seconds=_INFO_SECONDS,
        )
    )
    specific = info.get("format-specific", {}).get("data", {})
    if specific.get("data-file"):
        raise ConvertError("the disk downloaded from the host names an external data file")
    if info.get("encrypted"):
        raise ConvertError("the disk downloaded from the host is encrypted")
    virtual_size = int(info.get("virtual-size", 0))
    if virtual_size <= 0:
        raise ConvertError("the disk downloaded from the host reports no size")
    return OverlayFacts(virtual_size_bytes=virtual_size)


def create_overlay(path: Path, *, backing_path: Path, backing_format: str, virtual_size_bytes: int) -> None:
    """An empty qcow2 overlay over ``backing_path``: the disk of a guest that has written nothing yet."""
    _run(
        [
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            backing_format,
            "-b",
            _absolute(backing_path),
            _absolute(path),
            str(virtual_size_bytes),
        ],
        memory_bytes=_INFO_MEMORY_BYTES,
        cpu_seconds=_INFO_SECONDS,
        file_bytes=16 * MIB,
        wall_seconds=_INFO_SECONDS,
    )


def rebase(path: Path, *, backing_path: Path, backing_format: str) -> None:
    """Point the overlay at ``path`` to a local backing file, changing only its header (``-u``)."""
    _run(
        ["rebase", "-u", "-f", "qcow2", "-F", backing_format, "-b", _absolute(backing_path), _absolute(path)],
        memory_bytes=_INFO_MEMORY_BYTES,
        cpu_seconds=_INFO_SECONDS,
        file_bytes=path.stat().st_size + MIB,  # it rewrites the header in place
        wall_seconds=_INFO_SECONDS,
    )


def output_cap(virtual_size_bytes: int) -> int:
    """The most bytes a conversion of a disk of ``virtual_size_bytes`` may write, in any output format.

    A raw file is as long as the disk; a qcow2 or VMDK holds at most all of its data plus metadata.
    """
    return virtual_size_bytes + virtual_size_bytes // 64 + _OUTPUT_SLACK_BYTES


def convert(
    source: Path,
    destination: Path,
    *,
    output_format: str,
    virtual_size_bytes: int,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Write the whole disk at ``source`` (a qcow2 and its backing chain) as one file in ``output_format``.

    ``vmdk`` means a streamOptimized VMDK, the kind an OVA carries. ``progress`` is called with the
    share done (0.0 to 1.0) as qemu-img reports it. On failure nothing is left at ``destination``.
    """
    if output_format not in OUTPUT_FORMATS:
        raise ConvertError(f"cannot write a disk as '{output_format}'")
    options = ["-o", "subformat=streamOptimized"] if output_format == "vmdk" else []
    # -W lets the writes land out of order (faster; the file is whole only once qemu-img exits anyway),
    # except for a stream-optimized VMDK, which is written front to back by design.
    ordering = [] if output_format == "vmdk" else ["-W"]
    arguments = [
        "convert",
        "-p",
        *ordering,
        "-f",
        "qcow2",
        "-O",
        output_format,
        *options,
        _absolute(source),
        _absolute(destination),
    ]
    gib = max(1, -(-virtual_size_bytes // GIB))
    cpu_seconds = _CPU_BASE_SECONDS + _CPU_SECONDS_PER_GIB * gib
    try:
        _run_with_progress(
            arguments,
            cpu_seconds=cpu_seconds,
            file_bytes=output_cap(virtual_size_bytes),
            wall_seconds=settings.TASK_TIMEOUT_SECONDS,
            progress=progress,
        )
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


def _run_with_progress(
    arguments: list[str],
    *,
    cpu_seconds: int,
    file_bytes: int,
    wall_seconds: int,
    progress: Callable[[float], None] | None,
) -> None:
    """Run qemu-img, reading the ``(12.34/100%)`` lines ``-p`` writes to stdout as they come."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a full stderr pipe could stall it
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed program, arguments are a list
                [QEMU_IMG, *arguments],
                stdout=subprocess.PIPE,
                stderr=errors,
                stdin=subprocess.DEVNULL,
                preexec_fn=_limits(memory_bytes=_CONVERT_MEMORY_BYTES, cpu_seconds=cpu_seconds, file_bytes=file_bytes),
            )
        except FileNotFoundError:
            raise ConvertError("qemu-img is not installed (Debian package qemu-utils)") from None
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(wall_seconds, stop)
        watchdog.start()
        try:
            _follow(process, progress)
            returncode = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            watchdog.cancel()
        if timed_out.is_set():
            raise ConvertError(f"qemu-img {arguments[0]} took longer than {duration_text(wall_seconds)}")
        errors.seek(0)
        _check_exit(arguments[0], returncode, errors.read(64 * 1024).decode(errors="replace"), file_bytes)


def _follow(process: subprocess.Popen[bytes], progress: Callable[[float], None] | None) -> None:
    assert process.stdout is not None
    pending = b""
    last = -1.0
    while chunk := os.read(process.stdout.fileno(), 4096):
        pending += chunk
        *lines, pending = re.split(rb"[\r\n]", pending)
        for line in lines:
            match = _PROGRESS.search(line)
            if match is None or progress is None:
                continue
            share = min(1.0, float(match.group(1)) / 100)
            if share > last:
                last = share
                progress(share)

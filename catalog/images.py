"""Inspecting and converting untrusted disk images with qemu-img, safely.

An image from a feed is hostile until proven otherwise. A qcow2 header can name a backing
file or an external data file (anything on the host, e.g. /etc/shadow), and letting qemu-img
guess the format lets a "raw" file that looks like qcow2 do the same. So: always pass
``-f``, sniff the magic ourselves, refuse backing and data files, cap the virtual size, and
run qemu-img under CPU, memory and time limits.
"""

from __future__ import annotations

import json
import resource
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

QEMU_IMG = "qemu-img"
# Address-space caps (RLIMIT_AS counts reserved, not used, memory). Reading metadata needs
# little, so 1 GiB stops a crafted header early. Converting starts a pool of I/O threads whose
# stacks reserve 8 MiB each; under 1 GiB that intermittently failed with "qemu_thread_create:
# Resource temporarily unavailable", so conversion gets 4 GiB.
_INFO_MEMORY_LIMIT_BYTES = 1024**3
_CONVERT_MEMORY_LIMIT_BYTES = 4 * 1024**3
_CPU_LIMIT_SECONDS = 300
_WALL_LIMIT_SECONDS = 900

_MAGICS = {
    b"QFI\xfb": "qcow2",
    b"KDMV": "vmdk",
    b"conectix": "vpc",
    b"vhdxfile": "vhdx",
    b"QEVM": "qed",
}


class ImageError(Exception):
    """The image is unusable or unsafe; the message says why."""


@dataclass(frozen=True)
class ImageFacts:
    virtual_size_bytes: int


def _resource_limits(memory_bytes: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (_CPU_LIMIT_SECONDS, _CPU_LIMIT_SECONDS))

    return apply


def _run_qemu_img(arguments: list[str], *, memory_bytes: int) -> str:
    try:
        completed = subprocess.run(  # noqa: S603 - fixed program, arguments are a list
            [QEMU_IMG, *arguments],
            capture_output=True,
            text=True,
            timeout=_WALL_LIMIT_SECONDS,
            preexec_fn=_resource_limits(memory_bytes),
            check=False,
        )
    except FileNotFoundError:
        raise ImageError("qemu-img is not installed (Debian package qemu-utils)") from None
    except subprocess.TimeoutExpired:
        raise ImageError(f"qemu-img {arguments[0]} took longer than {_WALL_LIMIT_SECONDS} s") from None
    if completed.returncode != 0:
        raise ImageError(f"qemu-img {arguments[0]} failed: {completed.stderr.strip()[:500]}")
    return completed.stdout


def sniff_format(path: Path) -> str:
    """The format the file's first bytes claim; "raw" when no known magic is present."""
    with path.open("rb") as handle:
        head = handle.read(8)
    for magic, name in _MAGICS.items():
        if head.startswith(magic):
            return name
    return "raw"


def inspect_image(path: Path, *, declared_format: str, max_virtual_bytes: int) -> ImageFacts:
    sniffed = sniff_format(path)
    if sniffed != declared_format:
        raise ImageError(f"the feed says the image is {declared_format}, but its header says {sniffed}")
    info = json.loads(
        _run_qemu_img(
            ["info", "-f", declared_format, "--output=json", str(path)], memory_bytes=_INFO_MEMORY_LIMIT_BYTES
        )
    )
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise ImageError("the image names a backing file; refusing it (it could read files on the host)")
    specific = info.get("format-specific", {}).get("data", {})
    if specific.get("data-file"):
        raise ImageError("the image names an external data file; refusing it")
    if info.get("encrypted"):
        raise ImageError("the image is encrypted; the portal cannot use it")
    virtual_size = int(info.get("virtual-size", 0))
    if virtual_size <= 0:
        raise ImageError("the image reports no virtual size")
    if virtual_size > max_virtual_bytes:
        raise ImageError(f"the image's virtual size {virtual_size} bytes is over the limit {max_virtual_bytes}")
    return ImageFacts(virtual_size_bytes=virtual_size)


def convert_to_qcow2(source: Path, *, source_format: str, destination: Path) -> None:
    """Rewrite the image as a fresh qcow2 (this also drops anything unusual in a qcow2 source)."""
    _run_qemu_img(
        ["convert", "-f", source_format, "-O", "qcow2", str(source), str(destination)],
        memory_bytes=_CONVERT_MEMORY_LIMIT_BYTES,
    )

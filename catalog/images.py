"""Inspecting and converting untrusted disk images with qemu-img, safely.

An image from a feed is hostile until proven otherwise. A qcow2 header can name a backing
file or an external data file (anything on the host, e.g. /etc/shadow), and letting qemu-img
guess the format lets a "raw" file that looks like qcow2 do the same. So: always pass
``-f``, sniff the magic ourselves, refuse backing and data files, cap the virtual size, and
run qemu-img under CPU, memory, file-size and time limits.

A few hundred KiB of compressed qcow2 can expand to tens of GiB, so the converted size is
measured (``qemu-img measure``) and capped before converting, and the conversion itself cannot
write a file larger than its cap (RLIMIT_FSIZE), whatever the measurement said.

qemu-img reads a file name as "a path, a URL or the data": ``json:{...}``, ``nbd:…`` or
``http:…`` describe what to open rather than name a file. Only absolute paths are handed over,
and an absolute path never parses as one of those.
"""

from __future__ import annotations

import json
import resource
import signal
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
QEMU_IMG_WALL_SECONDS = 900  # one qemu-img run; callers waiting on one need to know

# The disk formats the portal takes. qed and vpc are recognised only to be refused by name: they
# are rarely published, and each format qemu-img opens is more parser facing hostile bytes.
DISK_FORMATS = ("qcow2", "raw", "vmdk", "vdi", "vhdx")

_MAGICS = {
    b"QFI\xfb": "qcow2",
    b"KDMV": "vmdk",
    b"conectix": "vpc",
    b"vhdxfile": "vhdx",
    b"QED\x00": "qed",
}
# VirtualBox's VDI: a line of text "<<< ... >>>" at the start, and its signature 0xbeda107f
# (little-endian) at offset 0x40.
_VDI_SIGNATURE_OFFSET = 0x40
_VDI_SIGNATURE = (0xBEDA107F).to_bytes(4, "little")
# The only vmdk layouts accepted: one file holding its own data. A vmdk header can instead carry a
# descriptor naming other files as its extents (any file on the host), which qemu-img would read.
_SELF_CONTAINED_VMDK = ("monolithicSparse", "streamOptimized")


class ImageError(Exception):
    """The image is unusable or unsafe; the message says why."""


@dataclass(frozen=True)
class ImageFacts:
    virtual_size_bytes: int
    converted_bytes: int  # what the qcow2 conversion will write, measured by qemu-img


def _resource_limits(memory_bytes: int, file_bytes: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (_CPU_LIMIT_SECONDS, _CPU_LIMIT_SECONDS))
        # No file it writes can grow past this (SIGXFSZ); reading the image needs 0.
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))

    return apply


def _image_path(path: Path) -> str:
    if not path.is_absolute():
        raise ImageError(f"'{path}' is not an absolute path; qemu-img could read it as a URL or an option string")
    return str(path)


def _run_qemu_img(arguments: list[str], *, memory_bytes: int, file_bytes: int = 0) -> str:
    try:
        completed = subprocess.run(  # noqa: S603 - fixed program, arguments are a list
            [QEMU_IMG, *arguments],
            capture_output=True,
            text=True,
            timeout=QEMU_IMG_WALL_SECONDS,
            preexec_fn=_resource_limits(memory_bytes, file_bytes),
            check=False,
        )
    except FileNotFoundError:
        raise ImageError("qemu-img is not installed (Debian package qemu-utils)") from None
    except subprocess.TimeoutExpired:
        raise ImageError(f"qemu-img {arguments[0]} took longer than {QEMU_IMG_WALL_SECONDS} s") from None
    # qemu-img ignores SIGXFSZ and reports EFBIG; either way, the file-size limit stopped it.
    if completed.returncode == -signal.SIGXFSZ or (completed.returncode and "File too large" in completed.stderr):
        raise ImageError(f"qemu-img {arguments[0]} stopped: its output would be more than {file_bytes} bytes")
    if completed.returncode != 0:
        raise ImageError(f"qemu-img {arguments[0]} failed: {completed.stderr.strip()[:500]}")
    return completed.stdout


def sniff_format(path: Path) -> str:
    """The format the file's first bytes claim; "raw" when no known magic is present."""
    with path.open("rb") as handle:
        head = handle.read(_VDI_SIGNATURE_OFFSET + len(_VDI_SIGNATURE))
    for magic, name in _MAGICS.items():
        if head.startswith(magic):
            return name
    if _is_vdi(head):
        return "vdi"
    return "raw"


def _is_vdi(head: bytes) -> bool:
    text = head[:_VDI_SIGNATURE_OFFSET]
    signature = head[_VDI_SIGNATURE_OFFSET : _VDI_SIGNATURE_OFFSET + len(_VDI_SIGNATURE)]
    return text.startswith(b"<<< ") and b" >>>" in text and signature == _VDI_SIGNATURE


def settle_disk_format(path: Path, *, declared: str, declared_by: str = "the feed") -> str:
    """The file's format as its header shows it, when that is one the portal takes and agrees with ``declared``.

    ``declared`` "" means nobody said: the header decides. Raises ``ImageError`` otherwise.
    """
    sniffed = sniff_format(path)
    if sniffed not in DISK_FORMATS:
        raise ImageError(
            f"the image is a {sniffed} image; the portal takes {', '.join(DISK_FORMATS[:-1])} and {DISK_FORMATS[-1]}"
        )
    if declared and declared != sniffed:
        raise ImageError(f"{declared_by} says the image is {declared}, but its header says {sniffed}")
    return sniffed


def inspect_image(path: Path, *, declared_format: str, max_virtual_bytes: int, max_converted_bytes: int) -> ImageFacts:
    """What the image is and will take once converted; raises ImageError when it is unsafe or too big."""
    name = _image_path(path)
    settle_disk_format(path, declared=declared_format)
    if not declared_format:
        raise ImageError("the image's format must be given to qemu-img (-f)")
    info = json.loads(
        _run_qemu_img(["info", "-f", declared_format, "--output=json", name], memory_bytes=_INFO_MEMORY_LIMIT_BYTES)
    )
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise ImageError("the image names a backing file; refusing it (it could read files on the host)")
    specific = info.get("format-specific", {}).get("data", {})
    if specific.get("data-file"):
        raise ImageError("the image names an external data file; refusing it")
    if declared_format == "vmdk":
        _refuse_vmdk_extents(specific, own_path=name)
    if info.get("encrypted"):
        raise ImageError("the image is encrypted; the portal cannot use it")
    virtual_size = int(info.get("virtual-size", 0))
    if virtual_size <= 0:
        raise ImageError("the image reports no virtual size")
    if virtual_size > max_virtual_bytes:
        raise ImageError(f"the image's virtual size {virtual_size} bytes is over the limit {max_virtual_bytes}")
    # Only after the checks above: measuring opens the image like converting does.
    measured = json.loads(
        _run_qemu_img(
            ["measure", "-f", declared_format, "-O", "qcow2", "--output=json", name],
            memory_bytes=_INFO_MEMORY_LIMIT_BYTES,
        )
    )
    converted = int(measured.get("required", 0))
    if converted <= 0:
        raise ImageError("qemu-img could not measure the converted image")
    if converted > max_converted_bytes:
        raise ImageError(
            f"the image would take {converted} bytes once converted, over the limit of {max_converted_bytes}"
        )
    return ImageFacts(virtual_size_bytes=virtual_size, converted_bytes=converted)


def _refuse_vmdk_extents(specific: dict, *, own_path: str) -> None:
    """A vmdk must hold its own data: one whose header lists other files as extents could read any file on the host."""
    layout = specific.get("create-type", "")
    if layout not in _SELF_CONTAINED_VMDK:
        raise ImageError(f"the vmdk image is of the '{layout[:40]}' kind; the portal takes single-file vmdk images")
    extents = specific.get("extents") or []
    if not extents or any(extent.get("filename") != own_path for extent in extents):
        raise ImageError("the vmdk image names other files as its extents (it could read files on the host)")


def convert_to_qcow2(source: Path, *, source_format: str, destination: Path, max_bytes: int) -> None:
    """Rewrite the image as a fresh qcow2 of at most ``max_bytes`` (this also drops anything unusual in a qcow2).

    On failure nothing is left at ``destination``.
    """
    arguments = ["convert", "-f", source_format, "-O", "qcow2", _image_path(source), _image_path(destination)]
    try:
        _run_qemu_img(arguments, memory_bytes=_CONVERT_MEMORY_LIMIT_BYTES, file_bytes=max_bytes)
    except ImageError:
        destination.unlink(missing_ok=True)
        raise


def rebase_overlay(path: Path, *, backing_path: str, backing_format: str) -> None:
    """Point the qcow2 overlay at ``path`` to another backing file, changing only its header.

    For a portal-made overlay moved to a host whose base volume lives at another path: the data
    stays as it is (``-u``: the backing file is not opened, it is on the other host).
    """
    if not backing_path.startswith("/"):
        raise ImageError("the new backing file must be an absolute path on its host")
    arguments = ["rebase", "-u", "-f", "qcow2", "-F", backing_format, "-b", backing_path, _image_path(path)]
    # It rewrites the header in place: the file may not grow past a little more than it is.
    _run_qemu_img(arguments, memory_bytes=_CONVERT_MEMORY_LIMIT_BYTES, file_bytes=path.stat().st_size + 1024 * 1024)

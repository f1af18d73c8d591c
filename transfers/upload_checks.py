"""What an uploaded file must look like before the catalog's own checks (``catalog.images``) see it.

Those checks read an image's header and take a file with no known header as a raw disk, so any
bytes at all would become a "raw" version: an archive, a compressed image, a document sent by
mistake. A disk a guest can boot from starts with a boot sector (an MBR, or the protective MBR in
front of a GPT), so a raw upload must have its signature; and the usual mistakes are named, with
what to do about them.
"""

from __future__ import annotations

from pathlib import Path

BOOT_SIGNATURE_OFFSET = 510
BOOT_SIGNATURE = b"\x55\xaa"
_HEAD_BYTES = 64 * 1024
# Formats people send by mistake, by their first bytes (or those at a known offset).
_WRAPPED = (
    (0, b"\x1f\x8b", "gzip-compressed"),
    (0, b"\xfd7zXZ\x00", "xz-compressed"),
    (0, b"BZh", "bzip2-compressed"),
    (0, b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (257, b"ustar", "a tar archive (an OVA is one)"),
)
_ISO9660 = (0x8001, b"CD001")


class UnusableUpload(Exception):
    """The file cannot become an appliance image; the message says why, for the person who sent it."""


def check_upload_content(path: Path, *, sniffed_format: str) -> None:
    """Refuse what is surely no disk image; ``sniffed_format`` is what the catalog read in its header."""
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    for offset, magic, what in _WRAPPED:
        if head[offset : offset + len(magic)] == magic:
            raise UnusableUpload(f"the file is {what}; unpack it and upload the disk image inside")
    if sniffed_format != "raw":
        return  # a header the catalog knows (qcow2, VMDK, VDI, VHDX...): its own checks read it
    if len(head) < BOOT_SIGNATURE_OFFSET + len(BOOT_SIGNATURE):
        raise UnusableUpload(f"the file is only {len(head)} bytes: too small to be a disk image")
    if head[BOOT_SIGNATURE_OFFSET : BOOT_SIGNATURE_OFFSET + 2] == BOOT_SIGNATURE:
        return
    offset, magic = _ISO9660
    if head[offset : offset + len(magic)] == magic:
        raise UnusableUpload("the file is a CD image (ISO 9660) without a boot sector; the portal starts disk images")
    raise UnusableUpload(
        "the file is no disk image the portal knows: it has no qcow2, VMDK, VDI or VHDX header, and as a raw "
        "disk it has no boot sector (no partition table or boot loader in its first 512 bytes)"
    )


__all__ = ["UnusableUpload", "check_upload_content"]

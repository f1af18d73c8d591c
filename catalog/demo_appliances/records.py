"""Where the db tier keeps its records: a small log in a region of its boot disk that no filesystem uses.

The boot disk is a FAT filesystem followed by ``RECORD_LOG_RESERVE_MIB`` of raw space. The log starts
right after the filesystem: one header sector (a magic line and the length of the text), then the
text, one record a line. The guest reads and writes it with ``dd`` on the block device and learns
where it starts from the kernel command line (``demo.record_log=<byte offset>``), which the disk
builder writes, so the two never disagree. Every appliance gets the same layout; only the db tier
writes to it. The caps are handed to the guest's scripts in ``/etc/appliance.env``.
"""

from __future__ import annotations

MIB = 1024 * 1024
# A record is one line of at most this many bytes (its newline not counted).
RECORD_MAX_BYTES = 500
# The text of the whole log (records and their newlines) is at most this long.
RECORD_LOG_MAX_BYTES = 1 * MIB
RECORD_LOG_HEADER_BYTES = 512
# The kernel ignores a dotted parameter of a module it does not have, and init reads it from /proc/cmdline.
RECORD_LOG_PARAMETER = "demo.record_log"


def record_log_reserve_mib() -> int:
    """Whole MiB after the filesystem that hold the header and the largest log."""
    return -(-(RECORD_LOG_HEADER_BYTES + RECORD_LOG_MAX_BYTES) // MIB)

"""Streaming a local file into a byte sink (a libvirt stream) in chunks, reporting progress.

Kept apart from libvirt so the chunking, short sends and progress reporting can be checked with
any object that has ``send``.
"""

from __future__ import annotations

import os
from typing import Protocol

from provisioning.drivers.base import InvalidRequest, ProgressCallback

UPLOAD_CHUNK_BYTES = 1024 * 1024


class ByteSink(Protocol):
    """What ``send_file`` needs of a stream: ``virStream.send`` returns how many bytes it accepted."""

    def send(self, data: bytes) -> int: ...


def report(progress: ProgressCallback | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def local_file_size(path: str) -> int:
    """Size of the file to upload; refuses a missing or empty one before anything is made on the host."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise InvalidRequest(f"cannot read local file '{path}': {exc.strerror}") from exc
    if size <= 0:
        # An upload length of 0 means "until the end" to libvirt, never what an empty file wants.
        raise InvalidRequest(f"local file '{path}' is empty")
    return size


def _send_all(sink: ByteSink, chunk: bytes) -> None:
    # virStreamSend may accept fewer bytes than offered.
    while chunk:
        sent = sink.send(chunk)
        if sent <= 0:
            raise InvalidRequest(f"libvirt stream refused data (send returned {sent})")
        chunk = chunk[sent:]


def send_file(sink: ByteSink, path: str, size: int, progress: ProgressCallback | None) -> None:
    """Send the first ``size`` bytes of ``path``, reporting ``(0, size)`` first and after every chunk.

    An exception raised by ``progress`` stops the transfer and propagates unchanged.
    """
    done = 0
    report(progress, done, size)
    try:
        with open(path, "rb") as source:
            while done < size:
                chunk = source.read(min(UPLOAD_CHUNK_BYTES, size - done))
                if not chunk:
                    raise InvalidRequest(f"local file '{path}' shrank during the upload")
                _send_all(sink, chunk)
                done += len(chunk)
                report(progress, done, size)
    except OSError as exc:
        raise InvalidRequest(f"cannot read local file '{path}': {exc.strerror}") from exc


__all__ = ["UPLOAD_CHUNK_BYTES", "ByteSink", "local_file_size", "report", "send_file"]

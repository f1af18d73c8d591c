"""Receiving a byte stream (a libvirt stream) into a local file in chunks, reporting progress.

The counterpart of ``upload_stream``, kept apart from libvirt for the same reason: the chunking,
progress reporting and the all-or-nothing local file can be checked with any object that has ``recv``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Protocol

from provisioning.drivers.base import InvalidRequest, ProgressCallback
from provisioning.drivers.upload_stream import UPLOAD_CHUNK_BYTES, report

DOWNLOAD_CHUNK_BYTES = UPLOAD_CHUNK_BYTES


class ByteSource(Protocol):
    """What ``receive_file`` needs of a stream: ``virStream.recv`` gives bytes, and ``b""`` at the end."""

    def recv(self, nbytes: int) -> bytes | int: ...


def receive_file(source: ByteSource, target: IO[bytes], total: int, progress: ProgressCallback | None) -> int:
    """Copy ``source`` into ``target`` until it ends; report ``(0, total)`` first and after every chunk.

    ``total`` is what the sender announced; should it send more, the total grows with it. Returns
    the bytes written. An exception raised by ``progress`` stops the transfer and propagates unchanged.
    """
    done = 0
    report(progress, done, total)
    while True:
        data = source.recv(DOWNLOAD_CHUNK_BYTES)
        if isinstance(data, int):
            # -2 ("nothing yet") only comes from non-blocking streams; failures are raised, not returned.
            raise InvalidRequest(f"libvirt stream gave no data (recv returned {data})")
        if not data:
            return done
        target.write(data)
        done += len(data)
        report(progress, done, max(total, done))


def _write_error(exc: OSError) -> InvalidRequest:
    # The local path stays out: it says nothing to whoever reads a failed move, and it is the portal's.
    return InvalidRequest(f"cannot write the downloaded volume to a local file: {exc.strerror}")


@contextmanager
def complete_local_file(dest_path: str) -> Iterator[IO[bytes]]:
    """A file that becomes ``dest_path`` only if the block ends without an error, and is removed otherwise.

    It is written beside ``dest_path`` (same file system) and renamed onto it, so ``dest_path`` never
    holds a partial copy, and an older file there is replaced only by a complete one.
    """
    directory, base = os.path.split(os.path.abspath(dest_path))
    try:
        handle = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{base}.", suffix=".part", delete=False)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _write_error(exc) from exc
    try:
        with handle:
            yield handle
        os.replace(handle.name, dest_path)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(handle.name)
        raise _write_error(exc) from exc
    except BaseException:
        with suppress(OSError):
            os.unlink(handle.name)
        raise


__all__ = ["DOWNLOAD_CHUNK_BYTES", "ByteSource", "complete_local_file", "receive_file"]

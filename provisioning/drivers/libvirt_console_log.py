"""Serial console logs: the files libvirt's log daemon (virtlogd) appends a domain's serial output to.

A domain defined with ``DomainSpec.console_log_path`` has everything its guest writes to the serial
port kept in a file in its host's storage pool folder, whether or not a console is open. The file is
read and deleted through the storage API like any volume, so a remote host needs nothing but its
libvirt connection. A pool learns of the file only when it is refreshed (virtlogd makes it when the
domain starts); its size is read fresh every time, since libvirt re-reads a volume's file on ``info``.

virtlogd rotates a log that grows past its ``max_size`` (2 MiB unless the host says otherwise) to
``NAME.0``, ``NAME.1``…; those older parts go when the log is deleted.
"""

from __future__ import annotations

import logging
import re
from contextlib import suppress

import libvirt

from provisioning.drivers.base import ConsoleLog, InvalidRequest
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import UNKNOWN_FLAG_CODES, Subject, has_code, libvirt_message, none_if_missing

logger = logging.getLogger(__name__)

_NO_VOLUME = libvirt.VIR_ERR_NO_STORAGE_VOL
_CHUNK_BYTES = 64 * 1024


def _refresh(pool: libvirt.virStoragePool) -> bool:
    """Whether the pool re-read its folder; it refuses while an upload into it runs."""
    try:
        pool.refresh(0)
    except libvirt.libvirtError as exc:
        logger.info("pool %s not refreshed: %s", pool.name(), libvirt_message(exc))
        return False
    return True


def _file_size(volume: libvirt.virStorageVol) -> int:
    """The log file's size. Not its capacity: libvirt probes the file's format, and a guest that
    writes a disk image header first would make the log look like an image of any size."""
    try:
        _kind, _capacity, physical = volume.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)
        return int(physical)
    except libvirt.libvirtError as exc:
        if not has_code(exc, *UNKNOWN_FLAG_CODES):
            raise
    _kind, _capacity, allocation = volume.info()
    return int(allocation)


def _receive(conn: libvirt.virConnect, volume: libvirt.virStorageVol, offset: int, length: int) -> bytes:
    """``length`` bytes of the file from ``offset`` (fewer if it ends sooner)."""
    if length <= 0:
        return b""
    stream = conn.newStream(0)
    pieces: list[bytes] = []
    received = 0
    try:
        volume.download(stream, offset, length, 0)
        while received < length:
            data = stream.recv(min(_CHUNK_BYTES, length - received))
            if isinstance(data, int) or not data:  # -2 only comes from non-blocking streams
                break
            pieces.append(data)
            received += len(data)
        stream.finish()
    except BaseException:
        with suppress(libvirt.libvirtError):
            stream.abort()
        raise
    return b"".join(pieces)[:length]


def _is_rotated_part(candidate: str, name: str) -> bool:
    return re.fullmatch(re.escape(name) + r"\.\d{1,3}", candidate) is not None


class LibvirtConsoleLogs(LibvirtConnection):
    """Console logs in one host's pools (the console log part of ``LibvirtDriver``)."""

    def read_console_log(self, *, pool: str, name: str, max_bytes: int) -> ConsoleLog:
        """The last ``max_bytes`` of the log; ``NotFound`` when the pool has no such file."""
        if max_bytes < 1:
            raise InvalidRequest(f"cannot read {max_bytes} bytes of a console log")
        subject = Subject(pool=pool, volume=name)
        with self._call(f"read the console log '{name}'", subject) as conn:
            pool_object = conn.storagePoolLookupByName(pool)
            volume = none_if_missing(_NO_VOLUME, pool_object.storageVolLookupByName, name)
            if volume is None:
                _refresh(pool_object)
                volume = pool_object.storageVolLookupByName(name)
            if not self._capabilities().stores_volume_data:
                return ConsoleLog(data=b"", size_bytes=0, truncated=False)
            size = _file_size(volume)
            offset = max(0, size - max_bytes)
            data = _receive(conn, volume, offset, size - offset)
        return ConsoleLog(data=data, size_bytes=size, truncated=offset > 0)

    def delete_console_log(self, *, pool: str, name: str) -> None:
        """Delete the log and its rotated parts; a missing one is not an error (a missing pool is)."""
        with self._call(f"delete the console log '{name}'", Subject(pool=pool, volume=name)) as conn:
            pool_object = conn.storagePoolLookupByName(pool)
            if not _refresh(pool_object):
                # What the pool knows still goes; a file it has not seen yet stays until the next try.
                logger.warning("host %s: console log %s may outlive its domain (pool not refreshed)", self.uri, name)
            for volume in pool_object.listAllVolumes(0):
                if volume.name() == name or _is_rotated_part(volume.name(), name):
                    none_if_missing(_NO_VOLUME, volume.delete, 0)


__all__ = ["LibvirtConsoleLogs"]

"""Storage pools and volumes through libvirt's storage API, so remote hosts work like local ones.

Nothing here touches the host's file system directly: pools are built, volumes created, uploaded
and deleted by libvirtd, wherever it runs.
"""

from __future__ import annotations

import logging
import posixpath
from contextlib import suppress
from typing import IO

import libvirt

from provisioning.drivers.base import InvalidRequest, PoolInfo, ProgressCallback, VolumeInfo
from provisioning.drivers.domain_xml import (
    build_dir_pool_xml,
    build_overlay_xml,
    build_volume_xml,
    parse_pool_path,
    parse_volume_format,
)
from provisioning.drivers.download_stream import complete_local_file, receive_file
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import (
    UNKNOWN_FLAG_CODES,
    Subject,
    has_code,
    libvirt_message,
    none_if_missing,
)
from provisioning.drivers.upload_stream import local_file_size, report, send_file

logger = logging.getLogger(__name__)

_NO_VOLUME = libvirt.VIR_ERR_NO_STORAGE_VOL


def _volume_info(volume: libvirt.virStorageVol) -> VolumeInfo:
    _kind, capacity, allocation = volume.info()
    return VolumeInfo(
        name=volume.name(),
        path=volume.path(),
        capacity_bytes=capacity,
        disk_format=parse_volume_format(volume.XMLDesc(0)),
        allocation_bytes=allocation,
    )


def _pool_info(pool: libvirt.virStoragePool) -> PoolInfo:
    _state, capacity, _allocation, available = pool.info()
    return PoolInfo(
        name=pool.name(),
        path=parse_pool_path(pool.XMLDesc(0)),
        capacity_bytes=capacity,
        available_bytes=available,
        active=bool(pool.isActive()),
    )


def _pool_or_none(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    return none_if_missing(libvirt.VIR_ERR_NO_STORAGE_POOL, conn.storagePoolLookupByName, name)


def _volume_or_none(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    return none_if_missing(_NO_VOLUME, pool.storageVolLookupByName, name)


def _refresh_quietly(pool: libvirt.virStoragePool) -> None:
    # Picks up files changed behind libvirt's back. It fails while an upload is running into the
    # pool, and a slightly stale listing is better than none.
    try:
        pool.refresh(0)
    except libvirt.libvirtError as exc:
        logger.debug("pool %s not refreshed: %s", pool.name(), libvirt_message(exc))


def _undefine_pool_quietly(pool: libvirt.virStoragePool) -> None:
    try:
        if pool.isActive():
            pool.destroy()
        pool.undefine()
    except libvirt.libvirtError as exc:
        logger.warning("could not undefine half-made pool %s: %s", pool.name(), libvirt_message(exc))


def _stream_file(
    conn: libvirt.virConnect, volume: libvirt.virStorageVol, path: str, size: int, progress: ProgressCallback | None
) -> None:
    stream = conn.newStream(0)
    try:
        volume.upload(stream, 0, size, 0)
        send_file(stream, path, size, progress)
        stream.finish()
    except BaseException:
        # An unstarted or already failed stream has nothing left to abort.
        with suppress(libvirt.libvirtError):
            stream.abort()
        raise


def _stored_size(volume: libvirt.virStorageVol) -> int:
    """The bytes a download of ``volume`` sends: its file's size, which a sparse file's allocation is not."""
    try:
        _kind, _capacity, physical = volume.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)
        return int(physical)
    except libvirt.libvirtError as exc:
        if not has_code(exc, *UNKNOWN_FLAG_CODES):
            raise
    _kind, _capacity, allocation = volume.info()
    return int(allocation)


def _receive_volume(
    conn: libvirt.virConnect, volume: libvirt.virStorageVol, target: IO[bytes], progress: ProgressCallback | None
) -> int:
    total = _stored_size(volume)
    stream = conn.newStream(0)
    try:
        volume.download(stream, 0, 0, 0)  # from offset 0, length 0: everything
        done = receive_file(stream, target, total, progress)
        stream.finish()
        return done
    except BaseException:
        with suppress(libvirt.libvirtError):
            stream.abort()
        raise


class LibvirtStorage(LibvirtConnection):
    """Pools and volumes of one host (the storage half of ``LibvirtDriver``)."""

    # --- pools ----------------------------------------------------------------------------------

    def ensure_dir_pool(self, *, name: str, path: str) -> PoolInfo:
        """Return the storage pool ``name``; define, build and start it as a dir pool at ``path`` if missing.

        An existing pool at another path is refused rather than silently used.
        """
        xml = build_dir_pool_xml(name, path)
        with self._call(f"set up pool '{name}' at '{path}'", Subject(pool=name)) as conn:
            pool = _pool_or_none(conn, name)
            if pool is None:
                pool = self._define_dir_pool(conn, name, xml)
            else:
                self._start_existing_pool(pool, name, path)
            return _pool_info(pool)

    def _define_dir_pool(self, conn: libvirt.virConnect, name: str, xml: str) -> libvirt.virStoragePool:
        try:
            pool = conn.storagePoolDefineXML(xml, 0)
        except libvirt.libvirtError:
            # Another worker may have defined it between our lookup and our define.
            existing = _pool_or_none(conn, name)
            if existing is None:
                raise
            self._start_existing_pool(existing, name, parse_pool_path(xml))
            return existing
        try:
            pool.build(0)  # creates the directory on the host, wherever that is
            pool.setAutostart(1)
            pool.create(0)
        except libvirt.libvirtError:
            # Leave no defined-but-broken pool behind for the next ensure_dir_pool to trip over.
            _undefine_pool_quietly(pool)
            raise
        return pool

    def _start_existing_pool(self, pool: libvirt.virStoragePool, name: str, path: str) -> None:
        current = parse_pool_path(pool.XMLDesc(0))
        if posixpath.normpath(current) != posixpath.normpath(path):
            raise InvalidRequest(f"pool '{name}' already exists at '{current}', not '{path}'")
        if not pool.isActive():
            pool.create(0)

    def pool_info(self, *, name: str) -> PoolInfo:
        """Read a pool as it is, changing nothing (``NotFound`` if it does not exist)."""
        with self._call(f"read pool '{name}'", Subject(pool=name)) as conn:
            return _pool_info(conn.storagePoolLookupByName(name))

    def delete_pool(self, *, name: str) -> None:
        """Stop, delete (the directory must be empty) and undefine a pool; a missing one is not an error.

        Not part of ``HypervisorDriver``: hosts keep their pools. Tests and tooling use it to clean up.
        """
        with self._call(f"delete pool '{name}'", Subject(pool=name)) as conn:
            pool = _pool_or_none(conn, name)
            if pool is None:
                return
            if pool.isActive():
                # Checked first because a dir pool can only be deleted once stopped, and a stopped
                # pool that then refuses deletion would be left half torn down.
                if pool.numOfVolumes() > 0:
                    raise InvalidRequest(f"pool '{name}' still holds volumes")
                pool.destroy()
            pool.delete(0)
            pool.undefine()

    # --- volumes --------------------------------------------------------------------------------

    def find_volume(self, *, pool: str, name: str) -> VolumeInfo | None:
        with self._call(f"look up volume '{name}'", Subject(pool=pool, volume=name)) as conn:
            volume = _volume_or_none(conn.storagePoolLookupByName(pool), name)
            return None if volume is None else _volume_info(volume)

    def list_volumes(self, *, pool: str) -> list[VolumeInfo]:
        with self._call(f"list volumes of pool '{pool}'", Subject(pool=pool)) as conn:
            pool_object = conn.storagePoolLookupByName(pool)
            _refresh_quietly(pool_object)
            # A volume deleted while we list it is left out.
            listed = (none_if_missing(_NO_VOLUME, _volume_info, volume) for volume in pool_object.listAllVolumes(0))
            return sorted((v for v in listed if v is not None), key=lambda v: v.name)

    def upload_volume(
        self,
        *,
        pool: str,
        name: str,
        source_path: str,
        disk_format: str,
        capacity_bytes: int,
        progress: ProgressCallback | None = None,
    ) -> VolumeInfo:
        """Create ``name`` in ``pool`` and stream the local file into it. A failed upload leaves no volume.

        ``capacity_bytes`` is the image's virtual size; the bytes streamed are the local file's.
        An exception raised by ``progress`` cancels the upload (and propagates unchanged). On a host
        whose volumes store no data (a simulated one) the empty volume stands in and nothing is sent.
        """
        xml = build_volume_xml(name, capacity_bytes, disk_format)
        size = local_file_size(source_path)
        subject = Subject(pool=pool, volume=name)
        with self._call(f"create volume '{name}' in pool '{pool}'", subject) as conn:
            volume = conn.storagePoolLookupByName(pool).createXML(xml, 0)
        try:
            # The local path stays out of the message: a failed build's reason is shown to its project.
            with self._call(f"upload an image into volume '{name}'", subject) as conn:
                if self._capabilities().stores_volume_data:
                    _stream_file(conn, volume, source_path, size, progress)
                else:
                    report(progress, size, size)
                return _volume_info(volume)
        except BaseException:
            self._delete_quietly(volume)
            raise

    def _delete_quietly(self, volume: libvirt.virStorageVol) -> None:
        try:
            volume.delete(0)
        except libvirt.libvirtError as exc:
            # Usually the connection is gone; the reconciler removes the leftover by its name.
            logger.warning("host %s: could not delete failed volume: %s", self.uri, libvirt_message(exc))

    def create_overlay(
        self, *, pool: str, name: str, backing: VolumeInfo, capacity_bytes: int | None = None
    ) -> VolumeInfo:
        """Create a qcow2 volume whose ``<backingStore>`` is ``backing`` (copy-on-write)."""
        capacity = backing.capacity_bytes if capacity_bytes is None else capacity_bytes
        if capacity < backing.capacity_bytes:
            raise InvalidRequest(
                f"overlay '{name}' ({capacity} bytes) cannot be smaller than its backing "
                f"'{backing.name}' ({backing.capacity_bytes} bytes)"
            )
        xml = build_overlay_xml(name, capacity, backing.path, backing.disk_format)
        action = f"create overlay '{name}' on '{backing.name}'"
        with self._call(action, Subject(pool=pool, volume=name)) as conn:
            return _volume_info(conn.storagePoolLookupByName(pool).createXML(xml, 0))

    def download_volume(self, *, pool: str, name: str, dest_path: str, progress: ProgressCallback | None = None) -> int:
        """Stream a volume's bytes into the local file ``dest_path``; return how many were written.

        The file appears only once complete (written beside it, then renamed): a failed download
        leaves no partial file, and an existing ``dest_path`` is replaced only by a complete copy.
        An exception raised by ``progress`` cancels the download (and propagates unchanged). On a
        host whose volumes store no data (a simulated one) the local copy is empty.
        """
        subject = Subject(pool=pool, volume=name)
        # The local path stays out of the message, as for uploads.
        with self._call(f"download volume '{name}' from pool '{pool}'", subject) as conn:
            volume = conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
            stores_data = self._capabilities().stores_volume_data
            with complete_local_file(dest_path) as target:
                if not stores_data:
                    report(progress, 0, 0)
                    return 0
                return _receive_volume(conn, volume, target, progress)

    def delete_volume(self, *, pool: str, name: str) -> None:
        """Delete a volume; a missing one is not an error (a missing pool is: it signals a config error)."""
        with self._call(f"delete volume '{name}'", Subject(pool=pool, volume=name)) as conn:
            volume = _volume_or_none(conn.storagePoolLookupByName(pool), name)
            if volume is not None:
                none_if_missing(_NO_VOLUME, volume.delete, 0)  # another worker may have been quicker


__all__ = ["LibvirtStorage"]

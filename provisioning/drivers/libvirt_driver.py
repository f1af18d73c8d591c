"""``HypervisorDriver`` on top of libvirt-python; the only module of the portal that imports libvirt.

It works the same on ``qemu:///system``, remote ``qemu+ssh://`` / ``qemu+tls://`` hosts and libvirt's
``test://`` driver: storage goes through libvirt's storage API only (the host may be remote), and every
``libvirtError`` is turned into one of the errors of ``provisioning.drivers.base``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import libvirt

from provisioning.drivers.base import (
    DomainInfo,
    DomainSpec,
    DriverError,
    HostInfo,
    HostUnreachable,
    InvalidRequest,
    NotFound,
    PoolInfo,
    PortUnavailable,
    ProgressCallback,
    Unsupported,
    VolumeInfo,
)
from provisioning.drivers.domain_xml import (
    build_dir_pool_xml,
    build_domain_xml,
    build_overlay_xml,
    build_volume_xml,
    parse_domain_tags,
    parse_pool_path,
    parse_vnc_port,
    parse_volume_format,
)

logger = logging.getLogger(__name__)

UPLOAD_CHUNK_BYTES = 1024 * 1024
_MIB = 1024 * 1024

_NOT_FOUND_CODES = frozenset(
    {libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_NO_STORAGE_VOL}
)
_CONNECTION_CODES = frozenset({libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_RPC})
# Errors raised by our own end of the wire (socket, ssh, RPC framing). Errors that happened inside
# the daemon travel back with their original origin, so a system error from the storage driver
# (say, permission denied) is not mistaken for a lost connection.
_TRANSPORT_ORIGINS = frozenset(
    {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE, libvirt.VIR_FROM_SSH, libvirt.VIR_FROM_LIBSSH}
)
_TRANSPORT_CODES = frozenset({libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR})
_UNSUPPORTED_CODES = frozenset(
    {
        libvirt.VIR_ERR_NO_SUPPORT,
        libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
        libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
    }
)
_TRANSIENT_CODES = frozenset(
    {libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_ERR_RESOURCE_BUSY, libvirt.VIR_ERR_AGENT_UNRESPONSIVE}
)
# A failed open is not worth retrying when the credentials or the URI itself are wrong.
_PERMANENT_OPEN_CODES = frozenset(
    {
        libvirt.VIR_ERR_AUTH_FAILED,
        libvirt.VIR_ERR_AUTH_CANCELLED,
        libvirt.VIR_ERR_AUTH_UNAVAILABLE,
        libvirt.VIR_ERR_XML_ERROR,
        libvirt.VIR_ERR_XML_DETAIL,
    }
)
# Codes a driver uses for flags it does not know; undefine then retries with fewer flags.
_UNKNOWN_FLAG_CODES = frozenset(
    {libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED}
)
# Most thorough first: the test driver, for one, knows neither NVRAM nor checkpoints.
_UNDEFINE_FLAG_SETS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    0,
)
_STATE_NAMES = {
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",  # running, just idle in the hypervisor
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
}


@dataclass(frozen=True)
class _Subject:
    """The objects a call is about, so that errors can name them."""

    domain: str | None = None
    pool: str | None = None
    volume: str | None = None


_NO_SUBJECT = _Subject()


# --- error translation --------------------------------------------------------------------------


def _libvirt_message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def _not_found_message(code: int | None, subject: _Subject) -> str | None:
    if code == libvirt.VIR_ERR_NO_DOMAIN and subject.domain:
        return f"domain '{subject.domain}' not found"
    if code == libvirt.VIR_ERR_NO_STORAGE_POOL and subject.pool:
        return f"pool '{subject.pool}' not found"
    if code == libvirt.VIR_ERR_NO_STORAGE_VOL and subject.volume:
        where = f" in pool '{subject.pool}'" if subject.pool else ""
        return f"volume '{subject.volume}' not found{where}"
    return None


def _is_connection_error(exc: libvirt.libvirtError) -> bool:
    code = exc.get_error_code()
    if code in _CONNECTION_CODES:
        return True
    return code in _TRANSPORT_CODES and exc.get_error_domain() in _TRANSPORT_ORIGINS


# QEMU's words when a user-networking hostfwd cannot bind its host port; libvirt passes them
# through as an internal error with no code of their own.
_HOSTFWD_FAILED = "Could not set up host forwarding rule"


def _translate_error(exc: libvirt.libvirtError, *, uri: str, action: str, subject: _Subject) -> DriverError:
    """The ``DriverError`` for a failed libvirt call, with a message naming the host and the object."""
    code = exc.get_error_code()
    if code in _NOT_FOUND_CODES:
        detail = _not_found_message(code, subject) or f"cannot {action}: {_libvirt_message(exc)}"
        return NotFound(f"host {uri}: {detail}")
    message = f"host {uri}: cannot {action}: {_libvirt_message(exc)}"
    if _is_connection_error(exc):
        return HostUnreachable(message)
    if code in _UNSUPPORTED_CODES:
        return Unsupported(message)
    if _HOSTFWD_FAILED in message:
        return PortUnavailable(message)
    return InvalidRequest(message, retryable=code in _TRANSIENT_CODES)


def _open_error(exc: libvirt.libvirtError, uri: str) -> HostUnreachable:
    permanent = exc.get_error_code() in _PERMANENT_OPEN_CODES or exc.get_error_domain() == libvirt.VIR_FROM_URI
    return HostUnreachable(f"host {uri}: cannot connect: {_libvirt_message(exc)}", retryable=not permanent)


def _has_code(exc: libvirt.libvirtError, *codes: int) -> bool:
    return exc.get_error_code() in codes


def _discard_libvirt_error(_ctx: object, _error: object) -> None:
    """libvirt prints every error to stderr by default; ours are raised as exceptions instead."""


# --- small readers ------------------------------------------------------------------------------


def _format_version(number: int) -> str:
    # libvirt encodes versions as major * 1_000_000 + minor * 1_000 + micro.
    return f"{number // 1_000_000}.{number // 1_000 % 1_000}.{number % 1_000}"


def _volume_info(volume: libvirt.virStorageVol) -> VolumeInfo:
    _kind, capacity, _allocation = volume.info()
    return VolumeInfo(
        name=volume.name(),
        path=volume.path(),
        capacity_bytes=capacity,
        disk_format=parse_volume_format(volume.XMLDesc(0)),
    )


def _pool_info(pool: libvirt.virStoragePool) -> PoolInfo:
    _state, capacity, _allocation, available = pool.info()
    return PoolInfo(
        name=pool.name(),
        path=parse_pool_path(pool.XMLDesc(0)),
        capacity_bytes=capacity,
        available_bytes=available,
    )


def _domain_info(domain: libvirt.virDomain, xml: str | None = None) -> DomainInfo:
    # The live XML of a running domain carries the VNC port autoport picked.
    xml = domain.XMLDesc(0) if xml is None else xml
    state, _reason = domain.state()
    return DomainInfo(
        name=domain.name(),
        uuid=domain.UUIDString(),
        state=_STATE_NAMES.get(state, "other"),
        tags=parse_domain_tags(xml),
        vnc_port=parse_vnc_port(xml),
    )


def _report(progress: ProgressCallback | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _local_file_size(path: str) -> int:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise InvalidRequest(f"cannot read local file '{path}': {exc.strerror}") from exc
    if size <= 0:
        # An upload length of 0 means "until the end" to libvirt, never what an empty file wants.
        raise InvalidRequest(f"local file '{path}' is empty")
    return size


def _send_all(stream: libvirt.virStream, chunk: bytes) -> None:
    # virStreamSend may accept fewer bytes than offered.
    while chunk:
        sent = stream.send(chunk)
        if sent <= 0:
            raise InvalidRequest(f"libvirt stream refused data (send returned {sent})")
        chunk = chunk[sent:]


def _send_file(stream: libvirt.virStream, path: str, size: int, progress: ProgressCallback | None) -> None:
    done = 0
    _report(progress, done, size)
    try:
        with open(path, "rb") as source:
            while done < size:
                chunk = source.read(min(UPLOAD_CHUNK_BYTES, size - done))
                if not chunk:
                    raise InvalidRequest(f"local file '{path}' shrank during the upload")
                _send_all(stream, chunk)
                done += len(chunk)
                _report(progress, done, size)
    except OSError as exc:
        raise InvalidRequest(f"cannot read local file '{path}': {exc.strerror}") from exc


def _abort_quietly(stream: libvirt.virStream) -> None:
    # An unstarted or already failed stream has nothing left to abort.
    with suppress(libvirt.libvirtError):
        stream.abort()


# --- the driver ---------------------------------------------------------------------------------


class LibvirtDriver:
    """A ``HypervisorDriver`` for one libvirt URI; the connection opens on first use.

    Safe to share between threads (libvirt connections are). If the daemon restarted, the next call
    reconnects once; a call that loses the connection raises ``HostUnreachable`` and the one after
    it reconnects.
    """

    def __init__(self, uri: str) -> None:
        if not isinstance(uri, str) or not uri:
            raise InvalidRequest(f"invalid libvirt URI {uri!r}")
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LibvirtDriver({self.uri!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- connection -----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # A dead connection cannot be closed any further.
        with suppress(libvirt.libvirtError):
            conn.close()

    def _open(self) -> libvirt.virConnect:
        # Global and idempotent; registering on every open keeps importing this module side-effect free.
        libvirt.registerErrorHandler(_discard_libvirt_error, None)
        try:
            return libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise _open_error(exc, self.uri) from exc

    @staticmethod
    def _is_alive(conn: libvirt.virConnect) -> bool:
        try:
            return conn.isAlive() == 1
        except libvirt.libvirtError:
            return False

    def _connection(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is not None and not self._is_alive(self._conn):
                logger.warning("host %s: libvirt connection lost, reconnecting", self.uri)
                self._close_locked()
            if self._conn is None:
                self._conn = self._open()
            return self._conn

    def _forget(self, conn: libvirt.virConnect) -> None:
        """Drop a connection that failed, unless another thread already replaced it."""
        with self._lock:
            if self._conn is conn:
                self._close_locked()

    @contextmanager
    def _call(self, action: str, subject: _Subject = _NO_SUBJECT) -> Iterator[libvirt.virConnect]:
        """Yield the connection; turn any ``libvirtError`` raised inside into a ``DriverError``."""
        conn = self._connection()
        try:
            yield conn
        except libvirt.libvirtError as exc:
            error = _translate_error(exc, uri=self.uri, action=action, subject=subject)
            if isinstance(error, HostUnreachable):
                # Without an event loop (so without keepalive) isAlive() only learns of a dead socket
                # from a failed call like this one; forgetting the connection makes the next call
                # reconnect.
                self._forget(conn)
            raise error from exc

    # --- host -----------------------------------------------------------------------------------

    def host_info(self) -> HostInfo:
        with self._call("read host information") as conn:
            _model, memory_mib, cpus, *_topology = conn.getInfo()
            return HostInfo(
                hostname=conn.getHostname(),
                hypervisor=conn.getType(),
                libvirt_version=_format_version(conn.getLibVersion()),
                cpus=cpus,
                memory_mib=memory_mib,
                free_memory_mib=conn.getFreeMemory() // _MIB,
            )

    @staticmethod
    def _is_test_driver(conn: libvirt.virConnect) -> bool:
        # libvirt reports "TEST" here, whatever case its documentation uses.
        return conn.getType().lower() == "test"

    # --- pools ----------------------------------------------------------------------------------

    @staticmethod
    def _pool_or_none(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
        try:
            return conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as exc:
            if _has_code(exc, libvirt.VIR_ERR_NO_STORAGE_POOL):
                return None
            raise

    def ensure_dir_pool(self, *, name: str, path: str) -> PoolInfo:
        """Return the storage pool ``name``; define, build and start it as a dir pool at ``path`` if missing.

        An existing pool at another path is refused rather than silently used.
        """
        xml = build_dir_pool_xml(name, path)
        with self._call(f"set up pool '{name}' at '{path}'", _Subject(pool=name)) as conn:
            pool = self._pool_or_none(conn, name)
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
            existing = self._pool_or_none(conn, name)
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
            self._undefine_pool_quietly(pool)
            raise
        return pool

    def _start_existing_pool(self, pool: libvirt.virStoragePool, name: str, path: str) -> None:
        current = parse_pool_path(pool.XMLDesc(0))
        if posixpath.normpath(current) != posixpath.normpath(path):
            raise InvalidRequest(f"host {self.uri}: pool '{name}' already exists at '{current}', not '{path}'")
        if not pool.isActive():
            pool.create(0)

    @staticmethod
    def _undefine_pool_quietly(pool: libvirt.virStoragePool) -> None:
        try:
            if pool.isActive():
                pool.destroy()
            pool.undefine()
        except libvirt.libvirtError as exc:
            logger.warning("could not undefine half-made pool %s: %s", pool.name(), _libvirt_message(exc))

    def pool_info(self, *, name: str) -> PoolInfo:
        with self._call(f"read pool '{name}'", _Subject(pool=name)) as conn:
            return _pool_info(conn.storagePoolLookupByName(name))

    def delete_pool(self, *, name: str) -> None:
        """Stop, delete (the directory must be empty) and undefine a pool; a missing one is not an error.

        Not part of ``HypervisorDriver``: hosts keep their pools. Tests and tooling use it to clean up.
        """
        with self._call(f"delete pool '{name}'", _Subject(pool=name)) as conn:
            pool = self._pool_or_none(conn, name)
            if pool is None:
                return
            if pool.isActive():
                # Checked first because a dir pool can only be deleted once stopped, and a stopped
                # pool that then refuses deletion would be left half torn down.
                if pool.numOfVolumes() > 0:
                    raise InvalidRequest(f"host {self.uri}: pool '{name}' still holds volumes")
                pool.destroy()
            pool.delete(0)
            pool.undefine()

    # --- volumes --------------------------------------------------------------------------------

    @staticmethod
    def _volume_or_none(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if _has_code(exc, libvirt.VIR_ERR_NO_STORAGE_VOL):
                return None
            raise

    def find_volume(self, *, pool: str, name: str) -> VolumeInfo | None:
        with self._call(f"look up volume '{name}'", _Subject(pool=pool, volume=name)) as conn:
            volume = self._volume_or_none(conn.storagePoolLookupByName(pool), name)
            return None if volume is None else _volume_info(volume)

    def list_volumes(self, *, pool: str) -> list[VolumeInfo]:
        with self._call(f"list volumes of pool '{pool}'", _Subject(pool=pool)) as conn:
            pool_object = conn.storagePoolLookupByName(pool)
            self._refresh_quietly(pool_object)
            volumes = [self._volume_info_or_none(volume) for volume in pool_object.listAllVolumes(0)]
            return sorted((v for v in volumes if v is not None), key=lambda v: v.name)

    @staticmethod
    def _refresh_quietly(pool: libvirt.virStoragePool) -> None:
        # Picks up files changed behind libvirt's back. It fails while an upload is running into the
        # pool, and a slightly stale listing is better than none.
        try:
            pool.refresh(0)
        except libvirt.libvirtError as exc:
            logger.debug("pool %s not refreshed: %s", pool.name(), _libvirt_message(exc))

    @staticmethod
    def _volume_info_or_none(volume: libvirt.virStorageVol) -> VolumeInfo | None:
        try:
            return _volume_info(volume)
        except libvirt.libvirtError as exc:
            if _has_code(exc, libvirt.VIR_ERR_NO_STORAGE_VOL):
                return None  # deleted while we were listing
            raise

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
        An exception raised by ``progress`` cancels the upload (and propagates unchanged).
        """
        xml = build_volume_xml(name, capacity_bytes, disk_format)
        size = _local_file_size(source_path)
        subject = _Subject(pool=pool, volume=name)
        with self._call(f"create volume '{name}' in pool '{pool}'", subject) as conn:
            volume = conn.storagePoolLookupByName(pool).createXML(xml, 0)
        try:
            with self._call(f"upload '{source_path}' into volume '{name}'", subject) as conn:
                self._stream_file(conn, volume, source_path, size, progress)
                return _volume_info(volume)
        except BaseException:
            self._delete_quietly(volume)
            raise

    def _stream_file(
        self,
        conn: libvirt.virConnect,
        volume: libvirt.virStorageVol,
        path: str,
        size: int,
        progress: ProgressCallback | None,
    ) -> None:
        stream = conn.newStream(0)
        try:
            volume.upload(stream, 0, size, 0)
        except libvirt.libvirtError as exc:
            _abort_quietly(stream)
            if _has_code(exc, libvirt.VIR_ERR_NO_SUPPORT) and self._is_test_driver(conn):
                # The test driver cannot upload and keeps no data anyway: the empty volume stands in.
                _report(progress, size, size)
                return
            raise
        try:
            _send_file(stream, path, size, progress)
            stream.finish()
        except BaseException:
            _abort_quietly(stream)
            raise

    def _delete_quietly(self, volume: libvirt.virStorageVol) -> None:
        try:
            volume.delete(0)
        except libvirt.libvirtError as exc:
            # Usually the connection is gone; the reconciler removes the leftover by its name.
            logger.warning("host %s: could not delete failed volume: %s", self.uri, _libvirt_message(exc))

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
        action = f"create overlay '{name}' on '{backing.path}'"
        with self._call(action, _Subject(pool=pool, volume=name)) as conn:
            return _volume_info(conn.storagePoolLookupByName(pool).createXML(xml, 0))

    def delete_volume(self, *, pool: str, name: str) -> None:
        """Delete a volume; a missing one is not an error (a missing pool is: it signals a config error)."""
        with self._call(f"delete volume '{name}'", _Subject(pool=pool, volume=name)) as conn:
            volume = self._volume_or_none(conn.storagePoolLookupByName(pool), name)
            if volume is None:
                return
            try:
                volume.delete(0)
            except libvirt.libvirtError as exc:
                if not _has_code(exc, libvirt.VIR_ERR_NO_STORAGE_VOL):
                    raise

    # --- domains --------------------------------------------------------------------------------

    @staticmethod
    def _domain_or_none(conn: libvirt.virConnect, name: str) -> libvirt.virDomain | None:
        try:
            return conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if _has_code(exc, libvirt.VIR_ERR_NO_DOMAIN):
                return None
            raise

    def define_and_start(self, spec: DomainSpec) -> DomainInfo:
        """Define a persistent domain from ``spec`` and start it. If starting fails, nothing stays defined."""
        xml = build_domain_xml(spec)
        subject = _Subject(domain=spec.name)
        # The XML carries no UUID, so libvirt refuses a name that is taken instead of redefining it.
        with self._call(f"define domain '{spec.name}'", subject) as conn:
            domain = conn.defineXML(xml)
        with self._call(f"start domain '{spec.name}'", subject):
            try:
                self._start(domain)
            except BaseException:
                self._remove_quietly(domain)
                raise
            return _domain_info(domain)

    @staticmethod
    def _start(domain: libvirt.virDomain) -> None:
        domain.create()

    def _remove_quietly(self, domain: libvirt.virDomain) -> None:
        try:
            self._power_off(domain)
            self._undefine(domain)
        except libvirt.libvirtError as exc:
            # The reconciler finds the leftover by its metadata tags.
            logger.warning("host %s: could not remove domain after failed start: %s", self.uri, _libvirt_message(exc))

    @staticmethod
    def _power_off(domain: libvirt.virDomain) -> None:
        try:
            if domain.isActive():
                domain.destroy()
        except libvirt.libvirtError as exc:
            # It may have stopped, or (if transient) vanished, since we looked.
            if not _has_code(exc, libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
                raise

    @staticmethod
    def _undefine(domain: libvirt.virDomain) -> None:
        for attempt, flags in enumerate(_UNDEFINE_FLAG_SETS, start=1):
            try:
                if flags:
                    domain.undefineFlags(flags)
                else:
                    domain.undefine()  # the plain entry point, for drivers without undefineFlags
                return
            except libvirt.libvirtError as exc:
                if _has_code(exc, libvirt.VIR_ERR_NO_DOMAIN):
                    return  # a transient domain is gone once destroyed
                if attempt == len(_UNDEFINE_FLAG_SETS) or not _has_code(exc, *_UNKNOWN_FLAG_CODES):
                    raise

    def destroy_domain(self, *, name: str) -> None:
        """Power off and undefine a domain; a missing one is not an error."""
        with self._call(f"destroy domain '{name}'", _Subject(domain=name)) as conn:
            domain = self._domain_or_none(conn, name)
            if domain is None:
                return
            self._power_off(domain)
            self._undefine(domain)

    def domain_info(self, *, name: str) -> DomainInfo:
        with self._call(f"read domain '{name}'", _Subject(domain=name)) as conn:
            return _domain_info(conn.lookupByName(name))

    def list_domains(self) -> list[DomainInfo]:
        """Every domain on the host that carries the portal's metadata tags."""
        with self._call("list domains") as conn:
            infos = [self._tagged_domain_info(domain) for domain in conn.listAllDomains(0)]
            return sorted((info for info in infos if info is not None), key=lambda info: info.name)

    @staticmethod
    def _tagged_domain_info(domain: libvirt.virDomain) -> DomainInfo | None:
        try:
            xml = domain.XMLDesc(0)
            if parse_domain_tags(xml) is None:
                return None  # not ours
            return _domain_info(domain, xml)
        except libvirt.libvirtError as exc:
            if _has_code(exc, libvirt.VIR_ERR_NO_DOMAIN):
                return None  # undefined while we were listing
            raise


__all__ = ["UPLOAD_CHUNK_BYTES", "LibvirtDriver"]

"""The libvirt side of ``MigrationOps``: libvirt's own live migration (``virDomainMigrate3``).

The portal holds a connection to both hosts and drives the migration between them (libvirt's
"managed direct" migration): the old host's QEMU streams the guest's memory to the new host's QEMU
and mirrors its writable disks into volumes made there beforehand, over NBD (non-shared storage,
incremental: only the overlay's own clusters travel, the base image is already on the new host).
Both streams go to the new host's migration address. Each migration runs in a thread of its own;
the caller's thread reads the jobs' statistics for progress and cancels a migration that outlasts
its timeout, after which libvirt leaves the guest running where it was.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libvirt

from provisioning.drivers.base import DomainInfo, DriverError, ProgressCallback, Unsupported
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_domains import describe_domain
from provisioning.drivers.libvirt_errors import Subject
from provisioning.drivers.migration_types import MigrationOps, MigrationRequest
from provisioning.drivers.migration_xml import copied_disk_targets, destination_xml

if TYPE_CHECKING:
    from provisioning.drivers.migration_types import Arrived

logger = logging.getLogger(__name__)

_FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    | libvirt.VIR_MIGRATE_NON_SHARED_INC
)
# SECURE: the VNC password must come along, or the console proxy could no longer authenticate.
_XML_FLAGS = libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE
_POLL_SECONDS = 0.5
_MIGRATION_FEATURE = "host/migration_features/live"


def _tcp_uri(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"tcp://{host}"


def can_migrate(conn: libvirt.virConnect) -> bool:
    """What libvirt says of the host: its capabilities list live migration (QEMU's do; the test driver's do not)."""
    root = ET.fromstring(conn.getCapabilities())  # noqa: S314 - libvirt's own answer
    return root.find(_MIGRATION_FEATURE) is not None


def _params(request: MigrationRequest, dest_xml: str, disks: tuple[str, ...]) -> dict[str, object]:
    uri = _tcp_uri(request.migration_address)
    params: dict[str, object] = {
        libvirt.VIR_MIGRATE_PARAM_URI: uri,
        libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: request.migration_address,
        libvirt.VIR_MIGRATE_PARAM_DISKS_URI: uri,  # the NBD server for the disk copy, on the same address
        libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: list(disks),
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: dest_xml,
    }
    if request.bandwidth_mib_sec > 0:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = request.bandwidth_mib_sec
    return params


@dataclass
class _Job:
    request: MigrationRequest
    domain: libvirt.virDomain
    params: dict[str, object]
    deadline: float = 0.0
    done: int = 0
    total: int = 0
    timed_out: bool = False

    def read_stats(self) -> None:
        try:
            stats = self.domain.jobStats(0)
        except libvirt.libvirtError:
            return  # between phases there is no job to read
        self.total = int(stats.get(libvirt.VIR_DOMAIN_JOB_DATA_TOTAL, self.total))
        self.done = min(int(stats.get(libvirt.VIR_DOMAIN_JOB_DATA_PROCESSED, self.done)), self.total)

    def cancel_if_late(self, now: float) -> None:
        if not self.timed_out and now > self.deadline:
            self.timed_out = True
            with suppress(libvirt.libvirtError):
                self.domain.abortJob()


class LibvirtMigration(LibvirtConnection):
    """Part of ``LibvirtDriver``."""

    def supports_live_migration(self) -> bool:
        with self._call("read the host's capabilities") as conn:
            return can_migrate(conn)

    def migrate_domain(
        self, request: MigrationRequest, *, target: MigrationOps, progress: ProgressCallback | None = None
    ) -> DomainInfo:
        outcome = self.migrate_domains([request], target=target, progress=progress)[request.name]
        if isinstance(outcome, DriverError):
            raise outcome
        return outcome

    def migrate_domains(
        self,
        requests: Sequence[MigrationRequest],
        *,
        target: MigrationOps,
        progress: ProgressCallback | None = None,
        arrived: Arrived | None = None,
    ) -> dict[str, DomainInfo | DriverError]:
        if not isinstance(target, LibvirtConnection):
            raise Unsupported("cannot move a domain to a host of another kind of driver")
        with target._call("prepare to receive domains") as dest_conn:
            if not can_migrate(dest_conn):
                raise Unsupported("cannot move domains to that host: its hypervisor has no live migration")
        jobs = [self._prepare(request) for request in requests]
        outcomes: dict[str, DomainInfo | DriverError] = {}
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(len(jobs), 1), thread_name_prefix="migrate") as pool:
            running: dict[Future[DomainInfo], _Job] = {}
            for job in jobs:
                job.deadline = time.monotonic() + job.request.timeout_seconds
                running[pool.submit(self._send, job, target, dest_conn)] = job
            while running:
                finished, _ = wait(running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    outcomes[job.request.name] = self._outcome(job, future, arrived)
                now = time.monotonic()
                for job in running.values():
                    job.cancel_if_late(now)
                    job.read_stats()
                if progress is not None and running:
                    progress(sum(j.done for j in jobs), sum(j.total for j in jobs))
        moved = sum(isinstance(outcome, DomainInfo) for outcome in outcomes.values())
        seconds = time.monotonic() - started
        logger.info("host %s: %d of %d domains moved to %s in %.1f s", self.uri, moved, len(jobs), target.uri, seconds)
        return outcomes

    def _prepare(self, request: MigrationRequest) -> _Job:
        name = request.name
        with self._call(f"prepare domain '{name}' for its move", Subject(domain=name)) as conn:
            if not can_migrate(conn):
                raise Unsupported("cannot move domains from this host: its hypervisor has no live migration")
            domain = conn.lookupByName(name)
            source_xml = domain.XMLDesc(_XML_FLAGS)
        disks = request.copied_disks or copied_disk_targets(source_xml)
        return _Job(request, domain, _params(request, destination_xml(source_xml, request.layout), disks))

    def _send(self, job: _Job, target: LibvirtConnection, dest_conn: libvirt.virConnect) -> DomainInfo:
        name = job.request.name
        with self._call(f"move domain '{name}' to its new host", Subject(domain=name)):
            moved = job.domain.migrate3(dest_conn, job.params, _FLAGS)
        with target._call(f"read moved domain '{name}'", Subject(domain=name)):
            return describe_domain(moved)

    @staticmethod
    def _outcome(job: _Job, future: Future[DomainInfo], arrived: Arrived | None) -> DomainInfo | DriverError:
        error = future.exception()
        if error is None:
            info = future.result()
            if arrived is not None:
                arrived(job.request.name, info)
            return info
        if not isinstance(error, DriverError):
            raise error
        if job.timed_out:
            seconds = job.request.timeout_seconds
            message = f"moving domain '{job.request.name}' took longer than {seconds} s and was cancelled"
            return DriverError(message, retryable=True, detail=error.detail)
        return error


__all__ = ["LibvirtMigration", "can_migrate"]

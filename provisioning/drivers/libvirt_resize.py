"""The libvirt side of ``ResizeOps``: ``setVcpusFlags``, ``setMemoryFlags``, ``blockResize`` and
``virStorageVol.resize``.

Live changes go first and the definition (``AFFECT_CONFIG``) after them, so that a live change the
host refuses leaves the definition untouched and the caller free to choose the next start instead.
"""

from __future__ import annotations

import logging
import time

import libvirt

from provisioning.drivers.base import InvalidRequest
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import Subject, has_code, libvirt_message
from provisioning.drivers.resize_types import DomainSize

logger = logging.getLogger(__name__)

_KIB_PER_MIB = 1024
_CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG
_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
# What a live memory change answers when the domain has no balloon, or the host cannot drive it:
# the guest cannot take the new size now, which is an answer, not a failure.
_NO_LIVE_MEMORY = frozenset(
    {
        libvirt.VIR_ERR_OPERATION_INVALID,
        libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
        libvirt.VIR_ERR_NO_SUPPORT,
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
        libvirt.VIR_ERR_INVALID_ARG,
    }
)
_POLL_SECONDS = 0.25
# A balloon that ends within this much of its target has got there (guests round to their pages).
_BALLOON_SLACK_MIB = 2


def _live_memory_mib(domain: libvirt.virDomain) -> int:
    """What the running guest has now: the balloon's own figure when the host reports one."""
    try:
        actual = domain.memoryStats().get("actual")
    except libvirt.libvirtError:
        actual = None
    if actual is None:
        actual = domain.info()[2]
    return int(actual) // _KIB_PER_MIB


def _set_defined_vcpus(domain: libvirt.virDomain, *, vcpus: int, maximum: int) -> None:
    # The maximum first when it grows (a count above it is refused), last when it shrinks.
    defined_max = domain.vcpusFlags(_CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
    if maximum > defined_max:
        domain.setVcpusFlags(maximum, _CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
    domain.setVcpusFlags(vcpus, _CONFIG)
    if maximum < defined_max:
        domain.setVcpusFlags(maximum, _CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)


def _set_defined_memory(domain: libvirt.virDomain, *, memory_mib: int) -> None:
    # The maximum first: lowering it lowers the current size with it, raising it makes room for it.
    kib = memory_mib * _KIB_PER_MIB
    domain.setMemoryFlags(kib, _CONFIG | libvirt.VIR_DOMAIN_MEM_MAXIMUM)
    domain.setMemoryFlags(kib, _CONFIG)


def _refresh_quietly(pool: libvirt.virStoragePool) -> None:
    # The pool reads the volume's new capacity from its file; the disk has grown whether or not the
    # listing catches up now (a refresh fails while an upload runs into the pool).
    try:
        pool.refresh(0)
    except libvirt.libvirtError as exc:
        logger.debug("pool %s not refreshed: %s", pool.name(), libvirt_message(exc))


class LibvirtResize(LibvirtConnection):
    """Part of ``LibvirtDriver``."""

    def domain_size(self, *, name: str) -> DomainSize:
        with self._call(f"read the size of domain '{name}'", Subject(domain=name)) as conn:
            domain = conn.lookupByName(name)
            if domain.isActive():
                live_max = domain.vcpusFlags(_LIVE | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
                return DomainSize(
                    running=True,
                    vcpus=domain.vcpusFlags(_LIVE),
                    max_vcpus=live_max,
                    memory_mib=_live_memory_mib(domain),
                    max_memory_mib=domain.maxMemory() // _KIB_PER_MIB,
                )
            _state, max_kib, memory_kib, _vcpus, _cpu_time = domain.info()
            return DomainSize(
                running=False,
                vcpus=domain.vcpusFlags(_CONFIG),
                max_vcpus=domain.vcpusFlags(_CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM),
                memory_mib=memory_kib // _KIB_PER_MIB,
                max_memory_mib=max_kib // _KIB_PER_MIB,
            )

    def set_vcpus(self, *, name: str, vcpus: int, maximum: int, live: bool) -> None:
        if maximum < vcpus:
            raise InvalidRequest(f"cannot give domain '{name}' {vcpus} vCPUs with room for only {maximum}")
        subject = Subject(domain=name)
        with self._call(f"change the vCPUs of domain '{name}'", subject) as conn:
            domain = conn.lookupByName(name)
            if live:
                domain.setVcpusFlags(vcpus, _LIVE)
            _set_defined_vcpus(domain, vcpus=vcpus, maximum=maximum)

    def set_memory(self, *, name: str, memory_mib: int, live: bool, wait_seconds: float) -> bool:
        subject = Subject(domain=name)
        with self._call(f"change the memory of domain '{name}'", subject) as conn:
            domain = conn.lookupByName(name)
            reached = live and self._balloon_to(domain, memory_mib=memory_mib, wait_seconds=wait_seconds)
            _set_defined_memory(domain, memory_mib=memory_mib)
            return reached

    @staticmethod
    def _balloon_to(domain: libvirt.virDomain, *, memory_mib: int, wait_seconds: float) -> bool:
        """Ask the guest's balloon for ``memory_mib`` and wait; put the old target back if it never gets there."""
        before = _live_memory_mib(domain)
        try:
            domain.setMemoryFlags(memory_mib * _KIB_PER_MIB, _LIVE)
        except libvirt.libvirtError as exc:
            if has_code(exc, *_NO_LIVE_MEMORY):
                return False
            raise
        deadline = time.monotonic() + wait_seconds
        while True:
            if abs(_live_memory_mib(domain) - memory_mib) <= _BALLOON_SLACK_MIB:
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_SECONDS)
        # A guest without a balloon driver never moves; a target left set would surprise it later.
        domain.setMemoryFlags(before * _KIB_PER_MIB, _LIVE)
        return False

    def grow_disk(self, *, name: str, device: str, pool: str, volume: str, size_bytes: int) -> None:
        subject = Subject(domain=name, pool=pool, volume=volume)
        with self._call(f"grow disk '{volume}' of domain '{name}'", subject) as conn:
            domain = conn.lookupByName(name)
            storage = conn.storagePoolLookupByName(pool)
            disk = storage.storageVolLookupByName(volume)
            if size_bytes < disk.info()[1]:
                raise InvalidRequest(f"cannot shrink disk '{volume}' of domain '{name}': disks only grow")
            if domain.isActive():
                domain.blockResize(device, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
                _refresh_quietly(storage)
            else:
                disk.resize(size_bytes, 0)

"""The floor of the snapshot benchmark: the libvirt calls of a whole-stack snapshot and revert, made directly.

What the portal's snapshot job asks libvirt for (``provisioning.services.snapshots`` over
``provisioning.drivers.libvirt_snapshots``), on a stack made like ``benchmarks.vm_floor`` makes it:

  snapshot  pause the three domains (so the tiers are taken at one moment), ``snapshotCreateXML``
            on each with the driver's own XML (``build_snapshot_xml``: internal, libvirt's defaults,
            marked "disks only" when memory is not wanted) and flags 0, then resume the domains
            in the template's start order;
  revert    pause the three, ``revertToSnapshot`` on each with ``VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED``
            (a snapshot of a running guest always holds its memory), then, for a snapshot with
            memory, resume them in start order; for one without, power them off and start them in
            start order, so they boot from the disks as they were.

It bypasses the portal, so only benchmarks may import ``libvirt`` outside ``provisioning/drivers``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import libvirt

from benchmarks import vm_bench as bench  # configures Django first
from benchmarks import vm_floor
from benchmarks.stack_launch import chain
from provisioning.drivers.domain_xml import build_snapshot_xml
from provisioning.templates import TemplateDocument


@dataclass(frozen=True)
class FloorSide:
    """The floor's stack, running, with the connection that made it."""

    conn: libvirt.virConnect
    stack: vm_floor.FloorStack
    expected: str  # web's page once every tier answers

    def cycle(self, index: int, *, memory: bool) -> Cycle:
        """Snapshot and revert (both timed), then the page again and the snapshots deleted (untimed)."""
        name = snapshot_name(index, memory=memory)
        before = overlays_allocation(self.conn, self.stack)
        taken = floor_snapshot(self.conn, self.stack, name, memory=memory)
        added = overlays_allocation(self.conn, self.stack) - before
        reverted = floor_revert(self.conn, self.stack, name, memory=memory)
        bench.wait_for_page(self.stack.url(), self.expected)
        floor_delete_snapshots(self.conn, self.stack)
        return Cycle(seconds={"snapshot": taken, "revert": reverted}, added_bytes=added)


@dataclass(frozen=True)
class Cycle:
    seconds: dict[str, float]  # "snapshot", "revert"
    added_bytes: int  # what the snapshot added to the overlays' allocation on the host


def overlays_allocation(conn: libvirt.virConnect, stack: vm_floor.FloorStack) -> int:
    """Bytes the stack's overlays take in the pool, as libvirt reports them (what the portal measures too)."""
    pool = conn.storagePoolLookupByName(bench.POOL)
    return sum(int(pool.storageVolLookupByName(i.overlay_volume).info()[2]) for i in stack.instances)


@contextmanager
def running_floor_stack(portal: bench.Portal, document: TemplateDocument) -> Iterator[FloorSide]:
    """A floor stack of ``document`` (``vm_floor``), serving its page; removed afterwards, however it ends.

    What its removal cannot remove is said and left to ``bench.remove_everything``.
    """
    with bench.libvirt_connection() as conn:
        stack = vm_floor.floor_stack(portal, document, 0)
        names = {instance.tier: instance.config.hostname for instance in stack.instances}
        side = FloorSide(conn=conn, stack=stack, expected=chain(document, names))
        try:
            vm_floor.floor_launch(conn, stack)
            bench.wait_for_page(stack.url(), side.expected)
            yield side
        finally:
            try:
                floor_remove(conn, stack)
            except libvirt.libvirtError as exc:
                print(f"the floor's clean-up left things for the final sweep: {exc}", flush=True)


def snapshot_name(index: int, *, memory: bool) -> str:
    """A floor snapshot's libvirt name, like the portal's (``<deployment>-snap<id>``) in length."""
    return f"{bench.FLOOR}-snap{index}{'m' if memory else 'd'}"


def _domains(conn: libvirt.virConnect, stack: vm_floor.FloorStack) -> list[list[libvirt.virDomain]]:
    """The stack's domains, layer by layer in start order."""
    return [[conn.lookupByName(instance.domain) for instance in layer] for layer in stack.layers]


def floor_snapshot(conn: libvirt.virConnect, stack: vm_floor.FloorStack, name: str, *, memory: bool) -> float:
    """Pause every domain, snapshot each, resume them in start order; the seconds it took."""
    started = time.perf_counter()
    layers = _domains(conn, stack)
    domains = [domain for layer in layers for domain in layer]
    xml = build_snapshot_xml(name, disks_only=not memory)
    for domain in domains:
        domain.suspend()
    for domain in domains:
        domain.snapshotCreateXML(xml, 0)
    for layer in layers:
        for domain in layer:
            domain.resume()
    return time.perf_counter() - started


def floor_revert(conn: libvirt.virConnect, stack: vm_floor.FloorStack, name: str, *, memory: bool) -> float:
    """Pause every domain, revert each to ``name``; resume them (memory) or boot them (disks only)."""
    started = time.perf_counter()
    layers = _domains(conn, stack)
    domains = [domain for layer in layers for domain in layer]
    for domain in domains:
        domain.suspend()
    for domain in domains:
        domain.revertToSnapshot(domain.snapshotLookupByName(name, 0), libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED)
        if not memory:
            domain.destroy()  # the memory in it is not to be resumed: only the disks count
    for layer in layers:
        for domain in layer:
            if memory:
                domain.resume()
            else:
                domain.create()
    return time.perf_counter() - started


def floor_delete_snapshots(conn: libvirt.virConnect, stack: vm_floor.FloorStack) -> None:
    """Delete every snapshot of the stack's domains (untimed), so each round starts with none."""
    for layer in _domains(conn, stack):
        for domain in layer:
            for snapshot in domain.listAllSnapshots(0):
                snapshot.delete(0)


def floor_remove(conn: libvirt.virConnect, stack: vm_floor.FloorStack) -> None:
    """The floor stack's snapshots, then what ``vm_floor.floor_delete`` removes (a domain with snapshots
    cannot be undefined plainly)."""
    floor_delete_snapshots(conn, stack)
    vm_floor.floor_delete(conn, stack)

"""Whole-stack snapshot and revert through the portal's API, against the same libvirt calls made directly.

Run:  .venv/bin/python benchmarks/snapshot.py [--rounds 3] [--events]

Two identical ``classic-three-tier`` stacks run side by side on the local libvirtd (qemu:///system,
domain type qemu): one launched through the API, one made directly as ``benchmarks/vm_floor.py``
makes it. Each round, for a snapshot with memory and one without, in alternating order:
  portal  POST /api/v1/stacks/{id}/snapshots/ {"name", "memory"} and poll until the stack is
          running again (the snapshot then says "ready"); POST .../snapshots/{sid}/revert/ and poll
          until the stack is running (a real django-q2 worker process does the work);
  floor   the libvirt calls the portal's driver makes, with libvirt-python alone
          (``benchmarks/snapshot_floor.py``): pause, snapshotCreateXML each, resume; pause,
          revertToSnapshot each, resume (memory) or power off and start (disks only).
Untimed after each revert: the web tier's page must show the whole chain again (a stack that works,
``chain()`` of ``benchmarks/stack_launch.py``), and the snapshot is deleted (the portal's through the
API), so every round starts with none. A warm-up snapshot and revert of each side comes first.
It prints per-round figures, the medians, and the ratios portal/floor; ``--events`` adds each
portal action's events, in seconds after the call. The portal's stack is deleted through the API and
the floor's domains and volumes directly, also when a round fails or the run is interrupted;
``benchmarks/vm_bench.py`` then removes whatever stays on the host.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import snapshot_floor, stack_life
from benchmarks import vm_bench as bench  # configures Django first
from benchmarks.stack_launch import chain
from provisioning.models import Status
from provisioning.templates import TemplateDocument
from tests.polling import TimedOut, wait_for

TEMPLATE = "classic-three-tier"
DEFAULT_ROUNDS = 3
SIDES = ("floor", "portal")
KINDS = {True: "memory", False: "disks only"}
OPERATIONS = ("snapshot", "revert")
MIB = 1024 * 1024


@dataclass(frozen=True)
class PortalStack:
    stack_id: int
    url: str
    expected: str  # web's page once every tier answers


@dataclass
class Figures:
    """Seconds per (side, kind, operation), one per round."""

    seconds: dict[tuple[str, bool, str], list[float]] = field(default_factory=dict)

    def add(self, side: str, memory: bool, operation: str, seconds: float) -> None:
        self.seconds.setdefault((side, memory, operation), []).append(seconds)

    def median(self, side: str, memory: bool, operation: str) -> float:
        return statistics.median(self.seconds[(side, memory, operation)])


def launch_portal_stack(portal: bench.Portal, template: int, document: TemplateDocument) -> PortalStack:
    launched = bench.portal_launch(portal, {"name": "snapshot-portal", "template": template})
    stack_id = launched.stack["id"]
    names = {instance["role"]: instance["name"] for instance in launched.stack["instances"]}
    (endpoint,) = launched.stack["endpoints"]
    stack = PortalStack(stack_id=stack_id, url=endpoint["url"], expected=chain(document, names))
    stack_life.page_seen(stack_id, stack.url, stack.expected, since=launched.posted_at)
    stack_life.renew_lease(portal, stack_id)
    return stack


def portal_cycle(
    portal: bench.Portal, stack: PortalStack, index: int, *, memory: bool, events: bool
) -> snapshot_floor.Cycle:
    """Snapshot and revert (both timed), then the page again and the snapshot deleted (untimed)."""
    name = f"r{index}-{'memory' if memory else 'disks'}"
    taken = stack_life.act(
        portal, stack.stack_id, "snapshots/", {"name": name, "memory": memory}, settles_in=Status.RUNNING
    )
    snapshot_id = taken.answer["id"]
    (row,) = [s for s in _snapshots(portal, stack.stack_id) if s["id"] == snapshot_id]
    if row["status"] != "ready":
        raise stack_life.StackTrouble(
            f"snapshot {name} is {row['status']}: {row['status_reason']}\n"
            + stack_life.trouble(stack.stack_id, taken.posted_at)
        )
    reverted = stack_life.act(
        portal, stack.stack_id, f"snapshots/{snapshot_id}/revert/", None, settles_in=Status.RUNNING
    )
    if events:
        print(f"  portal snapshot '{name}' ({KINDS[memory]}), then its revert:", flush=True)
        print("\n".join(stack_life.timeline(stack.stack_id, taken.posted_at)), flush=True)
    page = stack_life.page_seen(stack.stack_id, stack.url, stack.expected, since=reverted.posted_at)
    if events:
        print(f"  web's page after the revert call: {page.story(reverted.started)}", flush=True)
    _delete_snapshot(portal, stack.stack_id, snapshot_id, since=reverted.posted_at)
    return snapshot_floor.Cycle(
        seconds={"snapshot": taken.seconds, "revert": reverted.seconds}, added_bytes=row["size_bytes"]
    )


def _snapshots(portal: bench.Portal, stack_id: int) -> list[dict]:
    """The stack's snapshots: one page is all of them (a round keeps one, a stack at most ten)."""
    body = portal.client.get(f"{stack_life.stack_url(stack_id)}snapshots/").json()
    return body["results"] if isinstance(body, dict) else body


def _delete_snapshot(portal: bench.Portal, stack_id: int, snapshot_id: int, *, since: float) -> None:
    response = portal.client.delete(f"{stack_life.stack_url(stack_id)}snapshots/{snapshot_id}/")
    if response.status_code != 202:
        raise stack_life.StackTrouble(f"DELETE snapshot answered {response.status_code}: {response.content!r}")

    def gone() -> bool:
        rows = [s for s in _snapshots(portal, stack_id) if s["id"] == snapshot_id]
        if rows and rows[0]["status"] != "deleting":
            raise stack_life.StackTrouble(
                f"snapshot {snapshot_id} is {rows[0]['status']} after its deletion: {rows[0]['status_reason']}\n"
                + stack_life.trouble(stack_id, since)
            )
        return not rows

    try:
        wait_for(gone, timeout=stack_life.ACTION_TIMEOUT_SECONDS, interval=bench.API_POLL_SECONDS, what="snapshot")
    except TimedOut as exc:
        raise stack_life.StackTrouble(f"{exc}\n{stack_life.trouble(stack_id, since)}") from None


def run_rounds(portal: bench.Portal, rounds: int, events: bool) -> None:
    stack_life.give_long_life(portal)
    template, document = bench.template_document(TEMPLATE)
    figures = Figures()
    try:
        portal_stack = launch_portal_stack(portal, template, document)
        with snapshot_floor.running_floor_stack(portal, document) as floor:
            cycles: dict[str, Callable[[int, bool], snapshot_floor.Cycle]] = {
                "portal": lambda index, memory: portal_cycle(portal, portal_stack, index, memory=memory, events=events),
                "floor": lambda index, memory: floor.cycle(index, memory=memory),
            }
            for side in SIDES:  # warm-up, not counted
                cycles[side](rounds, True)
            for index, order in bench.alternating(rounds):
                for memory in KINDS:
                    said = {}
                    for side in order:
                        cycle = cycles[side](index, memory)
                        for operation, seconds in cycle.seconds.items():
                            figures.add(side, memory, operation, seconds)
                        said[side] = (
                            f"snapshot {cycle.seconds['snapshot']:.2f} s, revert {cycle.seconds['revert']:.2f} s"
                        )
                        if events:
                            said[side] += f" (the snapshot added {cycle.added_bytes / MIB:.0f} MiB on the host)"
                    print(
                        f"round {index + 1}, {KINDS[memory]}: floor {said['floor']}; portal {said['portal']}; "
                        f"load {bench.load()}",
                        flush=True,
                    )
    finally:
        stack_life.delete_all(portal, strict=False)
    _print_medians(figures)


def _print_medians(figures: Figures) -> None:
    for memory, kind in KINDS.items():
        for operation in OPERATIONS:
            floor = figures.median("floor", memory, operation)
            portal = figures.median("portal", memory, operation)
            print(
                f"{operation:<8} {kind:<10}: floor median {floor:.2f} s, portal median {portal:.2f} s, "
                f"ratio portal/floor {portal / floor:.2f}x"
            )


if __name__ == "__main__":
    stack_life.run(__doc__.splitlines()[0], run_rounds, default_rounds=DEFAULT_ROUNDS)

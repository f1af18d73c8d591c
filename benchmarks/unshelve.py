"""Unshelve to the web tier's page against launch to the page, for ``classic-three-tier``.

Run:  .venv/bin/python benchmarks/unshelve.py [--rounds 3] [--events]

On the local libvirtd (qemu:///system, domain type qemu), a real django-q2 worker doing the work,
each round times three things, each from the API call until the web tier's page on its published
port shows the whole chain (``web <name> | app <name> | db <name>: <record>``, as
``benchmarks/stack_launch.py`` reads it):
  launch   POST /api/v1/stacks/ with the template, on a host that already holds its base images
           (a warm-up launch, untimed, uploads them first);
  memory   POST .../unshelve/ of a stack shelved with {"memory": true}: its guests' memory was
           saved on the host (managed save), so they resume where they were;
  cold     POST .../unshelve/ of a stack shelved with {"memory": false}: its guests were shut
           down, so they boot.
The shelving itself is not timed. One stack runs at a time: the unshelves take the stack the last
launch made, and a launch deletes the stack before it (untimed), so each figure has the host to
itself. The order of the three turns every round, so drift on a noisy machine hits each alike.
It prints per-round figures, the medians, and the ratios unshelve/launch (goal: 1.00x or less;
memory kept should be faster still); ``--events`` adds each unshelve's events, in seconds after the
call. Every stack is deleted through the API at the end, also when a round fails or the run is
interrupted, and ``benchmarks/vm_bench.py`` then removes whatever stays on the host.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import stack_life
from benchmarks import vm_bench as bench  # configures Django first
from benchmarks.stack_launch import chain
from provisioning.models import Stack, Status
from provisioning.templates import TemplateDocument

TEMPLATE = "classic-three-tier"
GOAL = 1.0
DEFAULT_ROUNDS = 3
KINDS = ("launch", "memory", "cold")
LABELS = {
    "launch": "launch to page                 (POST stacks -> web's page shows the chain):",
    "memory": "unshelve to page, memory kept  (POST unshelve -> the page; managed save):",
    "cold": "unshelve to page, guests booted (POST unshelve -> the page; shut down):",
}


@dataclass(frozen=True)
class Running:
    """The stack the next unshelve takes: its id, its web page and what that page says once complete."""

    stack_id: int
    url: str
    expected: str


@dataclass(frozen=True)
class Measured:
    settled: float  # the call -> the stack running (every instance, for a launch)
    page: float  # the call -> web's page shows the chain


@dataclass
class Figures:
    settled: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)

    def add(self, measured: Measured) -> str:
        self.settled.append(measured.settled)
        self.page.append(measured.page)
        return f"page {measured.page:.1f} s (running {measured.settled:.2f} s)"

    def medians(self) -> str:
        return f"median {statistics.median(self.page):.1f} s (running: median {statistics.median(self.settled):.2f} s)"


def launch(
    portal: bench.Portal, template: int, document: TemplateDocument, name: str, *, events: bool
) -> tuple[Measured, Running]:
    launched = bench.portal_launch(portal, {"name": name, "template": template})
    stack_id = launched.stack["id"]
    names = {instance["role"]: instance["name"] for instance in launched.stack["instances"]}
    (endpoint,) = launched.stack["endpoints"]
    running = Running(stack_id=stack_id, url=endpoint["url"], expected=chain(document, names))
    page = stack_life.page_seen(stack_id, running.url, running.expected, since=launched.posted_at)
    stack_life.renew_lease(portal, stack_id)  # after the page: not timed
    if events:
        print(f"  launch: web's page: {page.story(launched.started)}", flush=True)
    return Measured(settled=launched.seconds, page=page.at - launched.started), running


def unshelve(portal: bench.Portal, running: Running, *, memory: bool, events: bool) -> Measured:
    """Shelve the running stack (untimed), then time its unshelve until web's page shows the chain again."""
    shelved = stack_life.act(portal, running.stack_id, "shelve/", {"memory": memory}, settles_in=Status.SHELVED)
    kept = Stack.objects.values_list("shelved_with_memory", flat=True).get(pk=running.stack_id)
    if kept != memory:
        raise stack_life.StackTrouble(
            f"asked to shelve {'with' if memory else 'without'} memory, the stack says shelved_with_memory={kept}\n"
            + stack_life.trouble(running.stack_id, shelved.posted_at)
        )
    acted = stack_life.act(portal, running.stack_id, "unshelve/", None, settles_in=Status.RUNNING)
    page = stack_life.page_seen(running.stack_id, running.url, running.expected, since=acted.posted_at)
    if events:
        print(f"  unshelve, {'memory kept' if memory else 'guests booted'}:", flush=True)
        print("\n".join(stack_life.timeline(running.stack_id, acted.posted_at)), flush=True)
        print(f"  web's page: {page.story(acted.started)}", flush=True)
    return Measured(settled=acted.seconds, page=page.at - acted.started)


def turning(rounds: int) -> list[tuple[int, tuple[str, ...]]]:
    """Round numbers from 0 with the order of the three kinds, turned by one every round."""
    return [(index, KINDS[index % len(KINDS) :] + KINDS[: index % len(KINDS)]) for index in range(rounds)]


def run_rounds(portal: bench.Portal, rounds: int, events: bool) -> None:
    stack_life.give_long_life(portal)
    template, document = bench.template_document(TEMPLATE)
    figures = {kind: Figures() for kind in KINDS}
    try:
        # Warm-up, not counted: the first launch uploads the three base images into the pool.
        _measured, running = launch(portal, template, document, "unshelve-warm-up", events=False)
        for index, order in turning(rounds):
            said = {}
            for kind in order:
                if kind == "launch":
                    stack_life.delete_all(portal, strict=True)  # one stack on the host at a time
                    measured, running = launch(portal, template, document, f"unshelve-{index}", events=events)
                else:
                    measured = unshelve(portal, running, memory=kind == "memory", events=events)
                said[kind] = figures[kind].add(measured)
            print(
                f"round {index + 1} ({', '.join(order)}): launch {said['launch']}; unshelve memory kept "
                f"{said['memory']}; unshelve guests booted {said['cold']}; load {bench.load()}",
                flush=True,
            )
    finally:
        stack_life.delete_all(portal, strict=False)
    for kind in KINDS:
        print(f"{LABELS[kind]} {figures[kind].medians()}")
    launch_page = statistics.median(figures["launch"].page)
    memory_page = statistics.median(figures["memory"].page)
    cold_page = statistics.median(figures["cold"].page)
    print(
        f"ratio unshelve/launch to page, memory kept:    {memory_page / launch_page:.2f}x (goal: {GOAL:.2f}x or less)"
    )
    print(f"ratio unshelve/launch to page, guests booted:  {cold_page / launch_page:.2f}x (goal: {GOAL:.2f}x or less)")
    print(f"ratio memory kept/guests booted, unshelve to page: {memory_page / cold_page:.2f}x")


if __name__ == "__main__":
    stack_life.run(__doc__.splitlines()[0], run_rounds, default_rounds=DEFAULT_ROUNDS)

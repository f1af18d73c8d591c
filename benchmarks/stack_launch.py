"""API call to all three tiers of ``classic-three-tier`` running, against the floor made directly.

Run:  .venv/bin/python benchmarks/stack_launch.py [--rounds 5] [--events]

Each round times two things on the local libvirtd (qemu:///system), in alternating order so
drift on a noisy machine hits both alike:
  floor   libvirt-python alone, what the portal asks libvirt for: the stack's isolated network,
          then per tier in the template's start order (db, app, web: each depends on the one
          before; tiers of one layer would start together) its NoCloud config drive (the same
          contents, in a subnet of its own), its qcow2 overlay and its domain, defined and started.
  portal  POST /api/v1/stacks/ with the shared template and poll GET until every instance is
          "running" (a real django-q2 worker process does the work through the ORM broker).
For both it also times the call to the web tier's page on its published port showing the whole
chain (``web <name> | app <name> | db <name>: <record>``). Both sides then delete what they made
(untimed). It prints per-round figures, the medians and the ratios; ``--events`` adds each
portal launch's progress events, in seconds after the API call. Everything it creates is
removed at the end (``benchmarks/vm_bench.py``).
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import vm_bench as bench  # configures Django first
from benchmarks import vm_floor
from provisioning.templates import TemplateDocument

TEMPLATE = "classic-three-tier"
GOAL = 1.3


def chain(document: TemplateDocument, names: dict[str, str]) -> str:
    """What web's page says once app has asked db and web has asked app."""
    record = document.tier("db").settings["record"]
    return f"web {names['web']} | app {names['app']} | db {names['db']}: {record}"


@dataclass
class Figures:
    running: list[float] = field(default_factory=list)  # the call -> every instance running
    page: list[float] = field(default_factory=list)  # the call -> web's page shows the chain

    def add(self, timed: bench.Timed, page_seen_at: float) -> str:
        self.running.append(timed.seconds)
        self.page.append(page_seen_at - timed.started)
        return f"running {self.running[-1]:.3f} s, page {self.page[-1]:.1f} s"

    def medians(self) -> str:
        running, page = statistics.median(self.running), statistics.median(self.page)
        return f"all running: median {running:.3f} s, page: median {page:.1f} s"


def run_rounds(portal: bench.Portal, rounds: int, events: bool) -> None:
    template, document = bench.template_document(TEMPLATE)
    with bench.libvirt_connection() as conn:

        def floor_round(index: int) -> tuple[bench.Timed, float]:
            stack = vm_floor.floor_stack(portal, document, index)
            timed = vm_floor.floor_launch(conn, stack)
            names = {instance.tier: instance.config.hostname for instance in stack.instances}
            page_seen_at = bench.wait_for_page(stack.url(), chain(document, names))
            vm_floor.floor_delete(conn, stack)
            return timed, page_seen_at

        def portal_round(index: int) -> tuple[bench.Timed, float]:
            launched = bench.portal_launch(portal, {"name": f"bench-{index}", "template": template})
            names = {instance["role"]: instance["name"] for instance in launched.stack["instances"]}
            (endpoint,) = launched.stack["endpoints"]
            page_seen_at = bench.wait_for_page(endpoint["url"], chain(document, names))
            bench.portal_delete(portal, launched.stack["id"])
            if events:
                print("\n".join(bench.stack_timeline(launched)), flush=True)
            return launched, page_seen_at

        # Warm-up, not counted: the first launch uploads the three base images into the pool.
        portal_round(rounds)
        floor_round(rounds)
        sides = {"floor": (floor_round, Figures()), "portal": (portal_round, Figures())}
        for index, order in bench.alternating(rounds):
            said = {which: sides[which][1].add(*sides[which][0](index)) for which in order}
            print(f"round {index + 1}: floor {said['floor']}; portal {said['portal']}; load {bench.load()}", flush=True)
    floor, portal_figures = sides["floor"][1], sides["portal"][1]
    floor_label = "floor  (libvirt-python: network, per tier config drive + overlay + define + start):"
    portal_label = "portal (API call -> every instance running / web's page shows the chain):"
    print(f"{floor_label} {floor.medians()}")
    print(f"{portal_label:<{len(floor_label)}} {portal_figures.medians()}")
    running = statistics.median(portal_figures.running) / statistics.median(floor.running)
    page = statistics.median(portal_figures.page) / statistics.median(floor.page)
    print(f"ratio portal/floor, all running: {running:.2f}x (goal: {GOAL:.2f}x or less)")
    print(f"ratio portal/floor, web page:    {page:.2f}x")


if __name__ == "__main__":
    bench.run(__doc__.splitlines()[0], run_rounds)

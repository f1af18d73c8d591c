"""API call to ``running`` for one VM, against the floor: the same network, disks and domain made directly.

Run:  .venv/bin/python benchmarks/launch.py [--rounds 5] [--events]

Each round times two things on the local libvirtd (qemu:///system), in alternating order so
drift on a noisy machine hits both alike:
  floor   libvirt-python alone, what the portal's one-tier launch asks libvirt for: the stack's
          isolated network, the NoCloud config drive (written, streamed into the pool), the
          qcow2 overlay over the cached base volume, the same domain XML defined and started.
  portal  POST /api/v1/stacks/ and poll GET until the stack's instance is "running" (a real
          django-q2 worker process does the work through the ORM broker).
Both sides then delete what they made (untimed). It prints the medians and their ratio;
``--events`` adds each portal launch's progress events, in seconds after the API call.
Everything it creates is removed at the end (``benchmarks/vm_bench.py``).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import vm_bench as bench  # configures Django first
from benchmarks import vm_floor
from provisioning.services.plans import single_tier_document

APPLIANCE = "demo-web"


def run_rounds(portal: bench.Portal, rounds: int, events: bool) -> None:
    version = bench.latest_version(APPLIANCE)
    payload = {"appliance": version.appliance_id}
    document = single_tier_document(version)
    with bench.libvirt_connection() as conn:
        # Warm-up: the first launch uploads the base image into the pool; neither side pays that below.
        warmup = bench.portal_launch(portal, {**payload, "name": "warmup"})
        bench.portal_delete(portal, warmup.stack["id"])
        warmup_floor = vm_floor.floor_stack(portal, document, rounds)
        vm_floor.floor_launch(conn, warmup_floor)
        vm_floor.floor_delete(conn, warmup_floor)
        floor, portal_seconds = [], []
        for index, order in bench.alternating(rounds):
            for which in order:
                if which == "floor":
                    stack = vm_floor.floor_stack(portal, document, index)
                    floor.append(vm_floor.floor_launch(conn, stack).seconds)
                    vm_floor.floor_delete(conn, stack)
                else:
                    launched = bench.portal_launch(portal, {**payload, "name": f"bench-{index}"})
                    portal_seconds.append(launched.seconds)
                    bench.portal_delete(portal, launched.stack["id"])
                    if events:
                        print("\n".join(bench.stack_timeline(launched)), flush=True)
            print(f"round {index + 1}: floor {floor[-1]:.3f} s, portal {portal_seconds[-1]:.3f} s", flush=True)
    floor_median, portal_median = statistics.median(floor), statistics.median(portal_seconds)
    print(f"floor  (libvirt-python: network + config drive + overlay + define + start): median {floor_median:.3f} s")
    print(f"portal (API call -> running):                                               median {portal_median:.3f} s")
    print(f"ratio portal/floor: {portal_median / floor_median:.2f}x (goal: 1.50x or less)")


if __name__ == "__main__":
    bench.run(__doc__.splitlines()[0], run_rounds)

"""A running stack's live move to another host through the portal, against the same libvirt calls made directly.

Run:  .venv/bin/python benchmarks/migrate.py [--rounds 3]

Two real hosts: the local libvirtd (qemu:///system) and a second libvirtd this run starts in a
folder of its own (``scripts/lib.sh`` ``libvirt_host_start``, as the test script starts its host2;
stopped and removed at the end), each publishing on its own loopback address. Each round times:
  portal  ``migration.begin_stack_migration`` + ``run_stack_migration`` (the service the API and
          the evacuation call) of a running ``classic-three-tier`` stack from the local host to the
          second, from the call until it returns with the stack running there;
  floor   an identical stack (``benchmarks.vm_floor``: same sizes, disks and guest config, made
          directly with libvirt-python) moved by the same steps made directly: the stack network on
          the new host, per tier a config drive uploaded and an overlay over the base image made
          there, then every tier's ``virDomainMigrate3`` at once, as the driver runs them, with its
          flags and parameters (live, incremental copy of the overlay over NBD, the same destination
          XML), and at the end the old host's disks and network removed.
Neither side pays the base images' upload to the second host: a warm-up move (untimed) puts them
there first. After each move the web tier's page is read on the new endpoint (untimed) to show the
stack answers there. The order of the two sides turns every round; it prints each round, the
medians and the ratio portal/floor.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Each host publishes guest ports on its own address (one endpoint name would reach one host only).
os.environ.setdefault("PORTAL_ENDPOINT_HOST", "")
# The floor bypasses the portal, so this benchmark may import libvirt (DESIGN.md, "the one exception").
import libvirt

from benchmarks import stack_life, vm_floor
from benchmarks import vm_bench as bench  # configures Django first
from benchmarks.processes import free_port
from benchmarks.stack_launch import chain
from provisioning import naming
from provisioning.config_drive import write_config_drive
from provisioning.drivers import PortForward
from provisioning.drivers.domain_xml import build_isolated_network_xml, build_overlay_xml, build_volume_xml
from provisioning.drivers.migration_types import DestinationLayout
from provisioning.drivers.migration_xml import destination_xml
from provisioning.models import Host, Stack, Status
from provisioning.services import hosts, migration
from provisioning.templates import TemplateDocument

TEMPLATE = "classic-three-tier"
DEFAULT_ROUNDS = 3
LIB_SH = bench.ROOT / "scripts" / "lib.sh"
HOSTS_PARENT = Path("/var/lib/portal-test")  # where QEMU (libvirt-qemu) may walk to a test host's disks
HOST2_ADDRESS = "127.0.0.2"
HOST2_VNC_MIN = "17900"  # apart from the test script's hosts (15900, 16900)
# What the driver asks of libvirt (provisioning/drivers/libvirt_migration.py), made directly.
FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    | libvirt.VIR_MIGRATE_NON_SHARED_INC
)
XML_FLAGS = libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE


def lib(function: str, *args: str) -> None:
    subprocess.run(["bash", "-c", 'source "$0" && "$@"', str(LIB_SH), function, *args], check=True, timeout=120)


@contextmanager
def second_host() -> Iterator[str]:
    """A libvirtd of this run's own, its URI; stopped (its guests too) and its folder removed afterwards."""
    HOSTS_PARENT.mkdir(mode=0o755, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-migrate.", dir=HOSTS_PARENT))
    folder.chmod(0o755)
    host_dir = folder / "host2"
    try:
        lib("libvirt_host_start", str(host_dir), HOST2_VNC_MIN)
        yield f"qemu+unix:///system?socket={quote(str(host_dir / 'sock' / 'libvirt-sock'), safe='/')}"
    finally:
        with suppress(subprocess.SubprocessError):
            lib("libvirt_host_stop", str(host_dir))
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Moved:
    seconds: float
    url: str  # the web tier's page on the new host


# --- the portal --------------------------------------------------------------------------------


def portal_stack(portal: bench.Portal, template: int, document: TemplateDocument, name: str, host2: Host) -> int:
    """Launch on the local host (the second drained meanwhile) and wait for web's page; the stack's id."""
    hosts.host_drain(user=portal.user, host=host2)
    try:
        launched = bench.portal_launch(portal, {"name": name, "template": template})
    finally:
        hosts.host_undrain(user=portal.user, host=host2)
    names = {instance["role"]: instance["name"] for instance in launched.stack["instances"]}
    (endpoint,) = launched.stack["endpoints"]
    bench.wait_for_page(endpoint["url"], chain(document, names))
    stack_life.renew_lease(portal, launched.stack["id"])
    return launched.stack["id"]


def portal_move(portal: bench.Portal, stack_id: int, host2: Host, expected: str) -> Moved:
    stack = Stack.objects.get(pk=stack_id)
    started = time.perf_counter()
    operation = migration.begin_stack_migration(user=portal.user, stack=stack, target=host2, queue=False)
    moved = migration.run_stack_migration(stack_id=stack_id, operation_id=operation.pk)
    seconds = time.perf_counter() - started
    operation.refresh_from_db()
    if not moved:
        raise SystemExit(f"the portal's move failed: {operation.detail}")
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    (url,) = operation.result["endpoints"]
    bench.wait_for_page(url, expected)
    return Moved(seconds=seconds, url=url)


def portal_round(portal: bench.Portal, template: int, document: TemplateDocument, host2: Host, name: str) -> Moved:
    stack_id = portal_stack(portal, template, document, name, host2)
    names = dict(Stack.objects.get(pk=stack_id).instances.values_list("role", "name"))
    try:
        return portal_move(portal, stack_id, host2, chain(document, names))
    finally:
        bench.portal_delete(portal, stack_id)


# --- the floor ---------------------------------------------------------------------------------


def floor_move(source: libvirt.virConnect, target: libvirt.virConnect, stack: vm_floor.FloorStack) -> Moved:
    """The stack's network, disks and domains to ``target`` by the driver's own calls; seconds and new page.

    As the portal does: each tier's config drive and overlay made on the new host one by one, then
    every tier's ``virDomainMigrate3`` at once (a thread each), then the old host's disks and network removed.
    """
    started = time.perf_counter()
    network = target.networkDefineXML(
        build_isolated_network_xml(stack.network, naming.bridge_name(f"{stack.network}@host2"))
    )
    network.create()
    pool = target.storagePoolLookupByName(bench.POOL)
    moves: list[tuple[libvirt.virDomain, dict[str, object]]] = []
    forwards: list[PortForward] = []
    for instance in stack.instances:
        config = _upload_config_drive(target, pool, instance)
        overlay = pool.createXML(
            build_overlay_xml(instance.overlay_volume, instance.capacity_bytes, instance.base_path, "qcow2"), 0
        )
        moved_forwards = tuple(
            PortForward(host_port=free_port(), guest_port=fw.guest_port, host_address=HOST2_ADDRESS)
            for fw in instance.port_forwards
        )
        forwards += moved_forwards
        domain = source.lookupByName(instance.domain)
        layout = DestinationLayout(
            disk_paths=(("vda", overlay.path()), ("vdb", config.path())),
            vnc_listen="127.0.0.1",
            port_forwards=moved_forwards,
        )
        moves.append((domain, _params(destination_xml(domain.XMLDesc(XML_FLAGS), layout))))
    with ThreadPoolExecutor(max_workers=len(moves)) as threads:
        list(threads.map(lambda move: move[0].migrate3(target, move[1], FLAGS), moves))
    old_pool = source.storagePoolLookupByName(bench.POOL)
    for instance in stack.instances:
        for volume in (instance.overlay_volume, instance.config_volume):
            old_pool.storageVolLookupByName(volume).delete(0)
    old_network = source.networkLookupByName(stack.network)
    old_network.destroy()
    old_network.undefine()
    seconds = time.perf_counter() - started
    (web,) = forwards
    return Moved(seconds=seconds, url=f"http://{web.host_address}:{web.host_port}/")


def _params(dest_xml: str) -> dict[str, object]:
    """The driver's parameters: memory and the overlay's copy (NBD) to the new host's migration address."""
    uri = "tcp://127.0.0.1"
    return {
        libvirt.VIR_MIGRATE_PARAM_URI: uri,
        libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: "127.0.0.1",
        libvirt.VIR_MIGRATE_PARAM_DISKS_URI: uri,
        libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: ["vda"],
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: dest_xml,
    }


def _upload_config_drive(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, instance: vm_floor.FloorInstance
) -> libvirt.virStorageVol:
    with tempfile.TemporaryDirectory(prefix="bench-cidata-") as folder:
        path = Path(folder) / "cidata.iso"
        write_config_drive(instance.config, path)
        size = path.stat().st_size
        volume = pool.createXML(build_volume_xml(instance.config_volume, size, "raw"), 0)
        stream = conn.newStream(0)
        volume.upload(stream, 0, size, 0)
        with path.open("rb") as source:
            stream.sendAll(lambda _stream, nbytes, opened: opened.read(nbytes), source)
        stream.finish()
    return volume


def floor_round(portal: bench.Portal, document: TemplateDocument, host2_uri: str, index: int) -> Moved:
    stack = vm_floor.floor_stack(portal, document, index)
    names = {instance.tier: instance.config.hostname for instance in stack.instances}
    with bench.libvirt_connection() as source, _opened(host2_uri) as target:
        vm_floor.floor_launch(source, stack)
        bench.wait_for_page(stack.url(), chain(document, names))
        try:
            moved = floor_move(source, target, stack)
            bench.wait_for_page(moved.url, chain(document, names))
        finally:
            _floor_remove(target, stack)
            _floor_remove(source, stack)
    return moved


@contextmanager
def _opened(uri: str) -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(uri)
    try:
        yield conn
    finally:
        conn.close()


def _floor_remove(conn: libvirt.virConnect, stack: vm_floor.FloorStack) -> None:
    """Whatever of the floor's stack is on this host (a round that failed half-way leaves some)."""
    for instance in stack.instances:
        with suppress(libvirt.libvirtError):
            domain = conn.lookupByName(instance.domain)
            with suppress(libvirt.libvirtError):
                domain.destroy()
            domain.undefine()
        for volume in (instance.overlay_volume, instance.config_volume):
            with suppress(libvirt.libvirtError):
                conn.storagePoolLookupByName(bench.POOL).storageVolLookupByName(volume).delete(0)
    with suppress(libvirt.libvirtError):
        network = conn.networkLookupByName(stack.network)
        with suppress(libvirt.libvirtError):
            network.destroy()
        network.undefine()


# --- the rounds --------------------------------------------------------------------------------


def run_rounds(portal: bench.Portal, rounds: int, events: bool) -> None:
    stack_life.give_long_life(portal)
    template, document = bench.template_document(TEMPLATE)
    with second_host() as host2_uri:
        host2 = hosts.host_register(
            user=portal.user,
            name="host2",
            uri=host2_uri,
            domain_type="qemu",
            storage_pool=bench.POOL,
            storage_pool_path=bench.POOL_PATH,  # the same path inside the second host's own mounts
            public_address=HOST2_ADDRESS,
        )
        try:
            # Warm-up, not counted: the first move uploads the three base images into the second host's pool.
            portal_round(portal, template, document, host2, "move-warm-up")
            figures: dict[str, list[float]] = {"portal": [], "floor": []}
            for index, order in bench.alternating(rounds):
                said = {}
                for side in order:
                    if side == "portal":
                        moved = portal_round(portal, template, document, host2, f"move-{index}")
                    else:
                        moved = floor_round(portal, document, host2_uri, index)
                    figures[side].append(moved.seconds)
                    said[side] = f"{moved.seconds:.2f} s (page on {moved.url})"
                print(
                    f"round {index + 1}: portal {said['portal']}; floor {said['floor']}; load {bench.load()}",
                    flush=True,
                )
        finally:
            stack_life.delete_all(portal, strict=False)
    portal_median, floor_median = statistics.median(figures["portal"]), statistics.median(figures["floor"])
    print(f"stack move, portal (begin_stack_migration + run_stack_migration): median {portal_median:.2f} s")
    print(f"stack move, floor (the same virDomainMigrate3 calls, direct):     median {floor_median:.2f} s")
    print(f"ratio portal/floor: {portal_median / floor_median:.2f}x")


if __name__ == "__main__":
    stack_life.run(__doc__.splitlines()[0], run_rounds, default_rounds=DEFAULT_ROUNDS)

"""Placement throughput: three-tier stacks placed over many host rows, by one launcher and by four.

Run:  .venv/bin/python benchmarks/placement.py [--placements 10000] [--hosts 1000] [--launchers 4] [--rounds 4]

No libvirt: hosts are rows. One placement is what a launch does about hosts, in one transaction:
``claim_host`` for a three-tier demand, then the claim rows (a Stack and its three Instances with
host, sizes and status ``pending``). Launchers are processes, each with its own database
connection, side by side as web workers are.

The floor writes the same claim rows in the same transactions with the host picked in Python: what
a launch costs when placement costs nothing. Placements and floor run in alternating rounds
(``--rounds`` of each), so that a machine whose load changes while the benchmark runs slows both
alike rather than whichever ran then. The floor writes onto hosts of its own (disabled, so
placement neither weighs them nor counts what they hold).

Printed for 100 hosts (placements only) and for the full count: placements per second and queries
per placement (counted on each launcher's connection: the claim and the two inserts), the ratio of
four launchers to one, and placements against their floor. Afterwards it checks that every stack
was placed, that no host holds more than it may, and that every host's counters (``allocated_*``,
which placement weighs by) say what its instances hold. Everything runs in a PostgreSQL database of its
own (``$PLACEMENT_BENCH_SERVER``, by default postgres://portal:portal@127.0.0.1:5432), created at
the start and dropped at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("PLACEMENT_BENCH_SERVER", "postgres://portal:portal@127.0.0.1:5432")
DATABASE = f"portal_bench_placement_{secrets.token_hex(4)}"
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-placement-"))
(WORK / "static").mkdir()
os.environ["DATABASE_URL"] = f"{SERVER}/{DATABASE}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_VAR_DIR", str(WORK))
os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")

import psycopg  # noqa: E402


def _admin_sql(statement: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


_admin_sql(f'CREATE DATABASE "{DATABASE}"')

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed  # noqa: E402
from portal.models import Project  # noqa: E402
from provisioning.demand import InstanceDemand, StackDemand  # noqa: E402
from provisioning.models import Host, Instance, Stack, Status  # noqa: E402
from provisioning.placement import claim_host, host_loads  # noqa: E402

TIERS = (("web", 1, 256, 2), ("app", 2, 512, 4), ("db", 1, 512, 8))  # tier, vCPUs, MiB, GiB
DEMAND = StackDemand(
    instances=tuple(InstanceDemand(tier=t, vcpus=v, memory_mib=m, disk_gib=d) for t, v, m, d in TIERS),
    lease_seconds=3600,
)
NOTHING = StackDemand(instances=(), lease_seconds=0)


@dataclass(frozen=True)
class Result:
    placements: int
    seconds: float
    queries: int

    @property
    def rate(self) -> float:
        return self.placements / self.seconds

    @property
    def queries_per_placement(self) -> float:
        return self.queries / self.placements


def set_up() -> tuple[int, int]:
    call_command("migrate", verbosity=0)
    project = Project.objects.create(name="bench", max_stacks=10**9, max_instances=10**9)
    feed = Feed.objects.create(url="https://bench.invalid/feed.xml", title="bench")
    appliance = Appliance.objects.create(feed=feed, identifier="bench", title="Bench")
    image = CachedImage.objects.create(sha256="0" * 64, source_format="qcow2", status=CachedImage.Status.READY)
    version = ApplianceVersion.objects.create(
        appliance=appliance,
        version="1",
        image_url="https://bench.invalid/image.qcow2",
        size_bytes=1,
        disk_format="qcow2",
        image=image,
    )
    return project.pk, version.pk


def reset_hosts(count: int, *, stacks_per_host: int) -> None:
    """``count`` healthy host rows for placements, each with room for ``stacks_per_host`` stacks, and no stacks.

    Beside each, with the next id, a host for the floor's rows: disabled, so placement never weighs
    it and what the floor writes never counts against the hosts placements choose from.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Instance._meta.db_table}, {Stack._meta.db_table} CASCADE")
    Host.objects.all().delete()
    Host.objects.bulk_create(
        Host(
            name=f"{'floor' if for_floor else 'bench'}-{index:05}",
            uri=f"test:///{'floor' if for_floor else 'bench'}-{index}",
            healthy=True,
            enabled=not for_floor,
            cpus=DEMAND.vcpus * stacks_per_host // 4 + 1,  # the default allocation ratio is 4
            memory_mib=DEMAND.memory_mib * stacks_per_host + 512,  # the default reserve is 512 MiB
            pool_capacity_bytes=DEMAND.disk_gib * stacks_per_host * 1024**3,
        )
        for index in range(count)
        for for_floor in (False, True)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Host._meta.db_table}")


def place(project_id: int, version_id: int, count: int, prefix: str, *, floor: bool) -> tuple[int, int]:
    """``count`` placements with their claim rows (or, ``floor``, the rows alone); returns (count, queries)."""
    queries = 0

    def counted(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    hosts = list(Host.objects.filter(enabled=False).values_list("pk", flat=True)) if floor else []
    choose: Callable[[int], Host] = (
        (lambda i: Host(pk=hosts[i % len(hosts)])) if floor else (lambda _: claim_host(DEMAND))
    )
    expires = timezone.now() + timezone.timedelta(hours=1)
    with connection.execute_wrapper(counted):
        for index in range(count):
            with transaction.atomic():
                host = choose(index)
                stack = Stack.objects.create(project_id=project_id, name=f"{prefix}-{index}", expires_at=expires)
                Instance.objects.bulk_create(
                    Instance(
                        stack=stack,
                        name=f"{prefix}-{index}-{item.tier}",
                        role=item.tier,
                        appliance_version_id=version_id,
                        host=host,
                        vcpus=item.vcpus,
                        memory_mib=item.memory_mib,
                        disk_gib=item.disk_gib,
                        status=Status.PENDING,
                    )
                    for item in DEMAND.instances
                )
    return count, queries


def _launcher(args: tuple[int, int, int, str, bool], start, out) -> None:  # type: ignore[no-untyped-def]
    project_id, version_id, count, prefix, floor = args
    connections.close_all()  # never share the parent's connection: open our own
    connection.ensure_connection()
    start.wait()
    out.put(place(project_id, version_id, count, prefix, floor=floor))
    connections.close_all()


def run(project_id: int, version_id: int, *, placements: int, launchers: int, name: str, floor: bool) -> Result:
    connections.close_all()  # forked children must not inherit an open connection
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    shares = [placements // launchers + (1 if i < placements % launchers else 0) for i in range(launchers)]
    processes = [
        context.Process(target=_launcher, args=((project_id, version_id, share, f"{name}-{i}", floor), start, out))
        for i, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    time.sleep(0.5)  # let every launcher connect before the clock starts
    began = time.perf_counter()
    start.set()
    done = [out.get() for _ in processes]
    seconds = time.perf_counter() - began
    for process in processes:
        process.join()
        if process.exitcode:
            raise SystemExit(f"a launcher failed (exit code {process.exitcode})")
    return Result(sum(n for n, _ in done), seconds, sum(q for _, q in done))


def added(results: list[Result]) -> Result:
    return Result(sum(r.placements for r in results), sum(r.seconds for r in results), sum(r.queries for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument("--launchers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of placements and floor")
    options = parser.parse_args()
    project_id, version_id = set_up()

    def line(hosts: int, launchers: int, what: str, result: Result) -> None:
        print(
            f"{hosts:>6} hosts  {launchers} launcher{'s' if launchers > 1 else ' '}  {result.placements:>6} {what:<22}"
            f"{result.rate:7.0f}/s  {result.queries_per_placement:5.2f} queries each",
            flush=True,
        )

    def scenario(hosts: int, placements: int, launchers: int, *, rounds: int) -> tuple[Result, Result]:
        """``placements`` placements and as many floor placements, in alternating rounds, on the same hosts."""
        # Room for twice the stacks each host gets on average, so the last placements still have a choice.
        reset_hosts(hosts, stacks_per_host=2 * placements // hosts + 2)
        results: dict[bool, list[Result]] = {False: [], True: []}
        for number in range(rounds):
            share = placements // rounds + (1 if number < placements % rounds else 0)
            for floor in (False, True):
                name = f"{'f' if floor else 'p'}{launchers}-{number}"
                results[floor].append(
                    run(project_id, version_id, placements=share, launchers=launchers, name=name, floor=floor)
                )
        placed = Instance.objects.count() // len(DEMAND.instances)
        if placed != 2 * placements:
            raise SystemExit(f"{placed} stacks placed, {2 * placements} expected")
        loads = host_loads()
        over = [load.host.name for load in loads if not load.fits(NOTHING)]
        if over:
            raise SystemExit(f"over capacity: {', '.join(over[:10])}")
        # The floor's hosts (disabled) hold rows no claim counted; the others' counters are their instances.
        drifted = [
            load.host.name
            for load in loads
            if load.host.enabled
            and (load.vcpus, load.memory_mib, load.disk_gib, load.instances)
            != (
                load.host.allocated_vcpus,
                load.host.allocated_memory_mib,
                load.host.allocated_disk_gib,
                load.host.allocated_instances,
            )
        ]
        if drifted:
            raise SystemExit(f"counters that differ from the instances: {', '.join(drifted[:10])}")
        placement, floor_result = added(results[False]), added(results[True])
        line(hosts, launchers, "placements", placement)
        line(hosts, launchers, "floor: claim rows only", floor_result)
        return placement, floor_result

    print(f"three-tier stacks ({DEMAND.describe()} each), database {DATABASE}")
    # The same stacks per host as below, a tenth of the hosts.
    scenario(100, options.placements // 10, 1, rounds=1)
    one, floor_one = scenario(options.hosts, options.placements, 1, rounds=options.rounds)
    many, floor_many = scenario(options.hosts, options.placements, options.launchers, rounds=options.rounds)
    ratio, floor_ratio = many.rate / one.rate, floor_many.rate / floor_one.rate
    print(f"{options.launchers} launchers / 1: {ratio:.2f}x (floor {floor_ratio:.2f}x)")
    share_one, share_many = one.rate / floor_one.rate, many.rate / floor_many.rate
    print(f"placement / floor: {share_one:.2f}x (1 launcher), {share_many:.2f}x ({options.launchers} launchers)")


if __name__ == "__main__":
    try:
        main()
    finally:
        connections.close_all()
        _admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        shutil.rmtree(WORK, ignore_errors=True)

"""The metrics sampler's cost per 1,000 domains, on libvirt's test driver.

Run:  .venv/bin/python benchmarks/sampler.py [--domains 1000] [--rounds 5]

One host (``test:///default``) holds ``--domains`` running domains, each an instance of the portal.
A sample is ``metrics.sampler.take_samples``: one bulk-stats call to the host, the instances' previous
samples read, one row per instance and one for the host written, old rows pruned.

The floor is what no sampler can avoid: the same bulk-stats call for the same domains through the
driver (a new connection, as the sampler opens one) and the same number of rows written with one
``bulk_create``. Samples and floor run in alternating rounds (``--rounds`` of each), so that a machine
whose load changes slows both alike. Printed: the median sample and floor (ms, and ms per 1,000
domains) and the ratio sample / floor. Everything runs in a PostgreSQL database of its own
(``$SAMPLER_BENCH_SERVER``, by default postgres://portal:portal@127.0.0.1:5432), created at the start
and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("SAMPLER_BENCH_SERVER", "postgres://portal:portal@127.0.0.1:5432")
DATABASE = f"portal_bench_sampler_{secrets.token_hex(4)}"
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-sampler-"))
(WORK / "static").mkdir()
os.environ["DATABASE_URL"] = f"{SERVER}/{DATABASE}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_VAR_DIR", str(WORK))
os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
os.environ["PORTAL_HOST_TRANSPORTS"] = "test"  # the benchmark's host is libvirt's test driver

import psycopg  # noqa: E402


def _admin_sql(statement: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


_admin_sql(f'CREATE DATABASE "{DATABASE}"')

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from metrics.models import InstanceSample  # noqa: E402
from metrics.sampler import take_samples  # noqa: E402
from portal.models import Project  # noqa: E402
from provisioning.drivers import DomainSpec, DomainTags  # noqa: E402
from provisioning.drivers.libvirt_driver import LibvirtDriver  # noqa: E402
from provisioning.models import Host, Instance, Stack, Status  # noqa: E402

URI = "test:///default"


def _spec(index: int) -> DomainSpec:
    return DomainSpec(
        name=f"bench-i{index}",
        domain_type="qemu",
        vcpus=1,
        memory_mib=64,
        disk_path=f"/default-pool/bench-i{index}.qcow2",
        tags=DomainTags(deployment="bench", project_id=1, stack_id=1, instance_id=index),
        vnc=False,
    )


def _rows(host: Host, domains: int) -> list[Instance]:
    project = Project.objects.create(name="bench")
    stack = Stack.objects.create(
        project=project, name="bench", status=Status.RUNNING, expires_at=timezone.now() + timedelta(days=1)
    )
    return Instance.objects.bulk_create(
        Instance(
            stack=stack,
            name=f"bench-i{index}",
            role="web",
            host=host,
            vcpus=1,
            memory_mib=64,
            status=Status.RUNNING,
            domain_name=f"bench-i{index}",
        )
        for index in range(domains)
    )


def _floor(instances: list[Instance], host: Host, moment_index: int) -> None:
    with LibvirtDriver(URI) as driver:
        driver.sample_metrics(names=[instance.domain_name for instance in instances])
    moment = timezone.now() - timedelta(days=1, seconds=moment_index)  # apart from the samples' moments
    InstanceSample.objects.bulk_create(
        InstanceSample(instance=instance, host=host, sampled_at=moment) for instance in instances
    )


def _timed(work: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    answer = work()
    return time.perf_counter() - start, answer


def run(domains: int, rounds: int) -> None:
    call_command("migrate", verbosity=0)

    # The test driver keeps test:///default's domains while a connection to it is open: this one.
    with LibvirtDriver(URI) as keeper:
        for index in range(domains):
            keeper.define_and_start(_spec(index))
        host = Host.objects.create(
            name="bench",
            uri=URI,
            domain_type="qemu",
            storage_pool="default-pool",
            cpus=16,
            memory_mib=65536,
            healthy=True,
        )
        instances = _rows(host, domains)
        take_samples()  # warm up: the first sample has no samples before
        _floor(instances, host, 0)
        samples, floors = [], []
        for round_index in range(rounds):
            seconds, written = _timed(take_samples)
            assert written == domains, f"sampled {written} of {domains} domains"
            samples.append(seconds)
            floors.append(_timed(partial(_floor, instances, host, round_index + 1))[0])
    sample, floor = statistics.median(samples), statistics.median(floors)
    per_thousand = 1000 / domains
    print(f"domains: {domains}, rounds: {rounds}")
    print(f"take_samples: {sample * 1000:8.1f} ms  ({sample * 1000 * per_thousand:.1f} ms per 1,000 domains)")
    print(f"floor:        {floor * 1000:8.1f} ms  (bulk stats through the driver + bulk_create of the rows)")
    print(f"ratio take_samples / floor: {sample / floor:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run(args.domains, args.rounds)


if __name__ == "__main__":
    try:
        main()
    finally:
        from django.db import connections

        connections.close_all()
        _admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        shutil.rmtree(WORK, ignore_errors=True)

"""Placement claims: one statement, host generations, held rows, lock waits, and parallel launches.

The parallel launches run on both databases. The tests of held rows and lock waits are PostgreSQL's:
only there may two launches be in their transactions at once (SQLite lets one writer in at a time).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import errors
from provisioning import allocations, placement
from provisioning.demand import StackDemand
from provisioning.models import Host, Instance, Stack
from provisioning.placement import Strategy, claim_host, host_loads
from tests.factories import HostFactory, ProjectFactory
from tests.provisioning.placement_support import THREE_TIER, host_of, in_parallel, launch_stack, room_for

ROW_LOCKS = "SQLite has no row locks: a writing transaction holds the whole database, so no claim is ever held"
NOTHING = StackDemand(instances=(), lease_seconds=0)


def test_a_claim_bumps_the_host_generation(place):
    host = HostFactory(**room_for(2))
    place()
    assert Host.objects.get(pk=host.pk).generation == host.generation + 1


@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_claim_is_one_statement(db, strategy):
    """Filter, weigh and claim: one query, whatever the number of hosts (the read and the claim were two)."""
    for n in range(placement.SAMPLE * 3):
        HostFactory(name=f"h{n}", uri=f"test:///h{n}", **room_for(50))
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        claim_host(THREE_TIER, strategy=strategy)
    assert len(captured) == 1, [query["sql"][:80] for query in captured.captured_queries]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_queries_per_placement_do_not_grow_with_hosts(place, strategy):
    def queries(name: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            place(name=name, strategy=strategy)
        return len(captured)

    for n in range(3):
        HostFactory(name=f"h{n}", uri=f"test:///h{n}", **room_for(50))
    few = queries("few")
    for n in range(3, placement.SAMPLE * 3):
        HostFactory(name=f"h{n}", uri=f"test:///h{n}", **room_for(50))
    assert queries("many") == few


@pytest.mark.only_on("sqlite", reason="PostgreSQL locks rows, not the database: it has no transaction modes")
@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_claim_needs_a_transaction_that_took_the_write_lock(monkeypatch):
    HostFactory(**room_for(2))
    monkeypatch.setattr(connection, "transaction_mode", None)  # a plain BEGIN: DEFERRED
    with transaction.atomic(), pytest.raises(RuntimeError, match="IMMEDIATE"):
        claim_host(THREE_TIER)
    assert Host.objects.get().generation == 0


class RivalLaunch:
    """Another launch, on its own connection, that holds ``host`` while our claim statement runs.

    Installed with ``connection.execute_wrapper`` on our connection. Before each of our claim
    statements (``times`` of them) the rival claims ``host`` in its own transaction: bumps its
    generation, writes an instance of ``fill`` MiB (none for 0), and keeps the transaction open, so
    the row is locked. It commits once our connection waits for that row lock (an ``UPDATE`` of
    ours that blocks), or when ``finish`` is called.
    """

    def __init__(self, host: Host, version, *, fill: int, times: int = 1) -> None:
        self.host, self.version, self.fill, self.left = host, version, fill, times
        # Its own project: ours is locked by our launch, and the rival's stack row must not wait for it.
        self.project = ProjectFactory(name="rival") if fill else None
        self.round: threading.Thread | None = None
        self.held, self.release, self.finishing = threading.Event(), threading.Event(), False
        self.our_pid = 0

    def __call__(self, execute, sql, params, many, context):
        if sql.lstrip().startswith("WITH eligible") and self.left:
            self.left -= 1
            self.our_pid = connection.connection.info.backend_pid
            self.held.clear()
            self.release.clear()
            self.round = threading.Thread(target=self.claim)
            self.round.start()
            assert self.held.wait(10), "the rival never got the row"
        elif sql.lstrip().startswith("UPDATE") and self.holding:
            self.release.set()  # we are about to wait for the row: the rival commits once we do
        try:
            return execute(sql, params, many, context)
        finally:
            if self.round and self.release.is_set():
                self.round.join()

    @property
    def holding(self) -> bool:
        return bool(self.round and self.round.is_alive())

    def finish(self) -> None:
        self.finishing = True
        self.release.set()
        if self.round:
            self.round.join()

    def claim(self) -> None:
        try:
            with transaction.atomic():
                Host.objects.filter(pk=self.host.pk).update(generation=F("generation") + 1)
                if self.fill:
                    stack = Stack.objects.create(
                        project=self.project, name=f"rival-{self.left}", expires_at=timezone.now()
                    )
                    Instance.objects.create(
                        stack=stack,
                        name="rival",
                        role="r",
                        appliance_version=self.version,
                        host=self.host,
                        vcpus=1,
                        memory_mib=self.fill,
                    )
                    allocations.recount(host=self.host)  # counted on the host, as the rival's claim would
                self.held.set()
                self.release.wait(10)
                deadline = time.monotonic() + 10
                while not self.finishing and not self._they_wait() and time.monotonic() < deadline:
                    time.sleep(0.005)
        finally:
            connection.close()

    def _they_wait(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", [self.our_pid])
            return cursor.fetchone() is not None


@pytest.mark.only_on("postgresql", reason=ROW_LOCKS)
@pytest.mark.django_db(transaction=True)
def test_a_host_another_launch_holds_is_skipped_without_waiting(place, version):
    """The rival holds "best" (its claim not yet committed): we take "second" at once (SKIP LOCKED)."""
    best = HostFactory(name="best", **room_for(1, memory_mib=512 + THREE_TIER.memory_mib + 100))
    HostFactory(name="second", uri="test:///second", **room_for(1))
    rival = RivalLaunch(best, version, fill=THREE_TIER.memory_mib)
    try:
        with connection.execute_wrapper(rival):
            assert place() == "second"
        assert rival.holding  # we never waited for it
    finally:
        rival.finish()
    assert all(load.fits(NOTHING) for load in host_loads())


@pytest.mark.only_on("postgresql", reason=ROW_LOCKS)
@pytest.mark.django_db(transaction=True)
def test_a_host_claimed_while_our_claim_statement_runs_is_passed_over(place, version):
    """The rival fills "best" and commits after our statement read it as empty but before it locked it."""
    best = HostFactory(name="best", **room_for(1, memory_mib=512 + THREE_TIER.memory_mib + 100))
    HostFactory(name="second", uri="test:///second", **room_for(1))
    rival_project = ProjectFactory(name="rival")
    connection.ensure_connection()
    our_pid = connection.connection.info.backend_pid
    weighing = "candidates AS MATERIALIZED ( SELECT"

    def slowed(execute, sql, params, many, context):
        # Our claim pauses while it weighs: after it took its snapshot, before it locks a row.
        if sql.startswith("WITH eligible"):
            assert weighing in sql
            sql = sql.replace(weighing, f"{weighing} pg_sleep(0.2) AS pause,", 1)
        return execute(sql, params, many, context)

    def rival() -> None:
        try:
            with connection.cursor() as cursor:
                for _ in range(500):
                    cursor.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", [our_pid])
                    if cursor.fetchone() == ("PgSleep",):
                        break
                    time.sleep(0.01)
            with transaction.atomic():
                Host.objects.filter(pk=best.pk).update(generation=F("generation") + 1)
                stack = Stack.objects.create(project=rival_project, name="rival", expires_at=timezone.now())
                Instance.objects.create(
                    stack=stack,
                    name="rival",
                    role="r",
                    appliance_version=version,
                    host=best,
                    vcpus=1,
                    memory_mib=THREE_TIER.memory_mib,
                )
                allocations.recount(host=best)  # counted on the host, as the rival's claim would
        finally:
            connection.close()

    competitor = threading.Thread(target=rival)
    competitor.start()
    try:
        with connection.execute_wrapper(slowed):
            assert place() == "second"
    finally:
        competitor.join()
    assert all(load.fits(NOTHING) for load in host_loads())


@pytest.mark.only_on("postgresql", reason=ROW_LOCKS)
@pytest.mark.django_db(transaction=True)
def test_a_host_claimed_while_we_wait_for_it_is_not_overfilled(place, version):
    """The rival fills the only host while we wait for its row: our claim sees the new generation and gives up."""
    only = HostFactory(name="only", **room_for(1))
    rival = RivalLaunch(only, version, fill=THREE_TIER.memory_mib)
    with connection.execute_wrapper(rival), pytest.raises(errors.NoCapacity, match="no host has room"):
        place()
    assert rival.left == 0
    assert not Stack.objects.exclude(project=rival.project).exists()
    assert all(load.fits(NOTHING) for load in host_loads())


@pytest.mark.only_on("postgresql", reason=ROW_LOCKS)
@pytest.mark.django_db(transaction=True)
def test_a_stale_read_is_read_again_and_the_host_taken_when_room_is_left(place, version):
    only = HostFactory(name="only", **room_for(2))
    rival = RivalLaunch(only, version, fill=0)  # a claim that added nothing (it changed its mind)
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(rival):
        assert place() == "only"
    reads = [q for q in captured.captured_queries if q["sql"].lstrip().startswith("WITH eligible")]
    assert len(reads) == 2  # the first claim lost to the rival, the second won
    assert Host.objects.get(pk=only.pk).generation == 2  # the rival's claim and ours


@pytest.mark.only_on("postgresql", reason=ROW_LOCKS)
@pytest.mark.django_db(transaction=True)
def test_claims_that_keep_losing_give_up_with_a_clear_error_and_a_usable_transaction(version):
    host = HostFactory(**room_for(5))
    rival = RivalLaunch(host, version, fill=0, times=placement.ROUNDS * 2)
    try:
        with transaction.atomic():
            with connection.execute_wrapper(rival), pytest.raises(errors.NoCapacity, match="try again"):
                claim_host(THREE_TIER)
            assert Host.objects.filter(pk=host.pk).exists()  # the launch transaction still works
    finally:
        rival.finish()
    assert rival.left == placement.ROUNDS * 2 - placement.ROUNDS


@pytest.mark.only_on("postgresql", reason=ROW_LOCKS)
@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_while_waiting_for_a_host_leaves_the_launch_transaction_usable():
    host = HostFactory(**room_for(5))
    holding, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Host.objects.select_for_update().get(pk=host.pk)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    holding.wait(10)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '50ms'")
            with pytest.raises(errors.NoCapacity, match="try again"):
                claim_host(THREE_TIER)
            assert Host.objects.get(pk=host.pk).generation == 0
    finally:
        release.set()
        holder.join()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("strategy", list(Strategy))
def test_parallel_launches_never_overfill_a_host(version, strategy):
    """Twelve three-tier launches at once onto three hosts with room for two stacks each: six fit.

    Each launch is for a project of its own, so no project lock lines them up: only the host claims
    do. On SQLite none may fail with "database is locked" (it would be counted as an error here).
    """
    for name in ("a", "b", "c"):
        HostFactory(name=name, uri=f"test:///{name}", **room_for(2))
    projects = [ProjectFactory(name=f"p{n}") for n in range(12)]

    def attempt(n: int) -> str:
        return host_of(launch_stack(projects[n], THREE_TIER, version=version, name=f"p{n}", strategy=strategy))

    assert in_parallel(12, attempt) == Counter({"a": 2, "b": 2, "c": 2, "no_capacity": 6})
    for load in host_loads():
        assert load.memory_mib == 2 * THREE_TIER.memory_mib <= load.memory_capacity_mib
        assert load.instances == 6
    assert Stack.objects.count() == 6
    assert Host.objects.filter(generation=2).count() == 3  # one claim per stack placed, no more

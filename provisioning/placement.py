"""Placement: one host for a whole stack, claimed in one statement without locking the others, and free ports on it.

All tiers of a stack go to one host: the stack network is a libvirt network on that host.

Filters. A host passes when it is enabled, healthy and not draining, runs every architecture (and
the domain type, if a tier names one) the stack asks for, and has room for the whole stack: vCPUs
against ``cpus * cpu_overcommit``, RAM against ``(memory_mib - memory_reserved_mib) *
memory_overcommit`` (1 by default: not over-committed), disk against ``pool_capacity_bytes *
disk_overcommit`` (a host whose pool size is unknown is not judged on disk). What a host holds is
read from its counters (``Host.allocated_*``: the sizes of its instances in ``ACTIVE_STATUSES``),
which the claim itself raises by the stack's demand and ``provisioning.allocations`` lowers when
instances stop counting; so a placement costs the same however many instances a host holds or has
held.

Weighers order what passes, judging each host as it would be with the stack on it (so a stack's
size counts against small hosts more than against big ones): ``spread`` (the default) puts a stack
on the host left with the largest share of its RAM free, then the one with the fewest instances,
then the one left with the largest share of its vCPUs free; ``pack`` the other way round (best
fit), so hosts fill one after the other (``settings.PLACEMENT``, from ``PORTAL_PLACEMENT``). Spread
weighs a window of hosts rather than all (see ``claim_host``).

Claims, as Nova's placement does it with resource-provider generations, in the same statement that
filters and weighs (``placement_sql.claim``): a launch costs one query for placement however many
hosts there are, and the database, not Python, does the work. Reading the loads takes no lock. The
chosen host's generation is bumped (``generation = generation + 1``), and its counters raised by the
stack's demand, only if it is still the one read; its row then stays locked until our transaction
commits the instance rows that are the claim, so the next launch on that host waits for them or
sees them. On PostgreSQL the statement skips a
host whose row another launch holds (``FOR UPDATE SKIP LOCKED``) or that another launch claimed
since the statement began, and takes the next of the best few; launches that choose different
hosts never wait for each other, which is what lets throughput grow with hosts. Only when every one
of the best few is held does a launch wait, for the best one, and read again if that launch took
it. On SQLite a writing transaction holds the whole database from its start (``BEGIN IMMEDIATE``,
see ``portal/settings.py``), so the read and the claim cannot be overtaken and the best host is
taken.

The statements are written in SQL rather than built with the ORM: they run on every launch, and
building and compiling them through the ORM took longer than the database took to run them. On
PostgreSQL they go through a server-binding cursor so that each connection prepares them once
(``prepare_threshold`` in ``portal/settings.py``) instead of planning them on every launch.
"""

from __future__ import annotations

import functools
import random
import socket
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q

from portal.errors import NoCapacity
from provisioning import placement_sql as sql
from provisioning import qos
from provisioning.demand import GIB, StackDemand
from provisioning.endpoints import bind_address
from provisioning.models import Host, PublishedPort


class Strategy(StrEnum):
    SPREAD = "spread"
    PACK = "pack"


# How many of the best hosts one claim weighs: enough that parallel launches which read the same
# order find another host when the best is being claimed, few enough to stay cheap.
CANDIDATES = 8
# Spread weighs a window of this many hosts (of those that pass the filters and could hold the
# stack empty), from a random start, rather than all of them; see ``claim_host``.
SAMPLE = 16
# Claims before a launch gives up because other launches keep claiming every host it picks.
ROUNDS = 5
# What the database answers when a claim lost to another transaction in a way a new read can fix:
# serialization failure, deadlock, lock timeout.
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}

# A host that may get new stacks at all (checked again inside the claim, so an operator's drain
# that commits between our read and our claim wins).
USABLE = Q(enabled=True, healthy=True, draining=False, maintenance=False)

_ORDER = {Strategy.SPREAD: sql.SPREAD_ORDER, Strategy.PACK: sql.PACK_ORDER}
# SQLite transaction modes (Django's ``OPTIONS["transaction_mode"]``) that hold the write lock from BEGIN.
_WRITE_LOCK_AT_BEGIN = {"IMMEDIATE", "EXCLUSIVE"}


def claim_host(demand: StackDemand, *, strategy: Strategy | None = None, dedicated_cpus: int = 0) -> Host:
    """Choose a host for the whole stack and claim it; call inside the launch transaction.

    The claim holds until the transaction ends: the instance rows written after it count against
    the host for every later launch, and a launch that read the host before them cannot claim it.
    ``NoCapacity`` says why no host would do.

    Spread weighs a sample of ``SAMPLE`` hosts (a window of ids from a random start, see
    ``placement_sql.window``), as Nova's scheduler does at scale (``host_subset_size``,
    ``randomize_allocation_candidates``), for two reasons. Summing what every host of a large cloud
    holds on every launch is what a placement costs: about 30 ms for 1,000 hosts holding 30,000
    instances, against 1-3 ms for a window. And parallel launches that weigh the same hosts all pick
    the same one and then queue on its row. The best of a window of 16 is, on average, among the
    emptiest 6% of the cloud, and a cloud of up to ``SAMPLE`` hosts is weighed whole. Only when no
    host of the window has room are all hosts weighed. Pack weighs all hosts: its point is the one
    fullest host that fits, which a window would miss.

    ``dedicated_cpus``: only a host with that many dedicated CPUs free will do (``provisioning.qos``);
    the caller takes them (``qos.take_dedicated_cpus``) in the same transaction, under the claim's lock.
    """
    if dedicated_cpus:
        return _claim_with_dedicated_cpus(demand, strategy=strategy, count=dedicated_cpus)
    return _claim_host(demand, strategy=strategy, only=None)


def _claim_with_dedicated_cpus(demand: StackDemand, *, strategy: Strategy | None, count: int) -> Host:
    # Counted without a lock, then again under the claim's row lock: a host that another launch filled
    # in between is given back (its claim rolled back to a savepoint) and the next one tried.
    usable = list(Host.objects.filter(USABLE))
    if not usable:
        raise no_capacity(demand)
    filled: set[int] = set()
    for _round in range(ROUNDS):
        only = [pk for pk in qos.hosts_with_free_cpus(count, usable) if pk not in filled]
        if not only:
            raise qos.no_dedicated_room(count, usable)
        with transaction.atomic():
            host = _claim_host(demand, strategy=strategy, only=only)
            if len(qos.free_dedicated_cpus(host)) >= count:
                return host
            filled.add(host.pk)
            transaction.set_rollback(True)
    raise NoCapacity(f"other launches took the dedicated CPUs of every host {ROUNDS} times in a row; try again")


def _claim_host(demand: StackDemand, *, strategy: Strategy | None, only: list[int] | None) -> Host:
    db = transaction.get_connection()
    if not db.in_atomic_block:
        raise RuntimeError("claim_host runs inside the launch transaction: its row lock is the claim")
    if db.vendor == "sqlite" and getattr(db, "transaction_mode", None) not in _WRITE_LOCK_AT_BEGIN:
        # A deferred transaction reads first and takes the write lock at its first write; if another
        # launch committed in between, SQLite refuses ("database is locked") instead of waiting.
        raise RuntimeError("on SQLite, launch transactions must take the write lock when they begin (IMMEDIATE)")
    chosen = strategy or Strategy(settings.PLACEMENT)
    for _round in range(ROUNDS):
        claim: _Claim | None = None
        if chosen is Strategy.SPREAD:
            claim = _claim_best(db, demand, order=_ORDER[chosen], sample=SAMPLE, only=only)
        if claim is None:
            claim = _claim_best(db, demand, order=_ORDER[chosen], sample=None, only=only)
        if claim is None:
            raise no_capacity(demand)
        if claim.host is not None:
            return claim.host
        # Every one of the best few is held by a launch in progress or was claimed since we read it:
        # wait for the best one's launch to end, then claim it if that launch did not take it after all.
        host = _claim_waiting(db, demand, claim.best_id, claim.best_generation)
        if host is not None:
            return host
    raise NoCapacity(
        f"other launches claimed every host with room for {demand.describe()} {ROUNDS} times in a row; try again"
    )


@dataclass(frozen=True)
class _Claim:
    best_id: int
    best_generation: int
    host: Host | None  # None: every candidate was held or had changed


def _claim_best(
    db: BaseDatabaseWrapper, demand: StackDemand, *, order: str, sample: int | None, only: list[int] | None
) -> _Claim | None:
    """Weigh and claim in one statement; None when no host (of the window, with ``sample``) has room."""
    where, params = sql.eligible(demand, only=only)
    if sample:
        offset = random.randrange(1 << 62)  # noqa: S311 - spreads load, guards nothing
        chosen = sql.window(where, params, size=sample, offset=offset, columns=sql.COUNTED_LOAD)
    else:
        chosen = sql.every_host(where, params, columns=sql.COUNTED_LOAD)
    statement, statement_params = sql.claim(
        chosen=chosen,
        room=demand,
        order=order,
        candidates=CANDIDATES,
        columns=_host_columns(),
        postgresql=db.vendor == "postgresql",
    )
    rows = _fetch(db, statement, statement_params)
    if not rows:
        return None
    best_id, best_generation, *host_row = rows[0]
    return _Claim(best_id, best_generation, _host(db, host_row) if host_row[0] is not None else None)


def _claim_waiting(db: BaseDatabaseWrapper, demand: StackDemand, host_id: int, generation: int) -> Host | None:
    """Claim a host read at ``generation`` for ``demand``, waiting for its row lock; None if it changed meanwhile.

    Such a claim can deadlock or time out (``lock_timeout``), so it runs in a savepoint: losing that
    way, or to a launch that claimed the host meanwhile, leaves the launch transaction usable and
    the row unlocked.
    """
    try:
        with transaction.atomic(using=db.alias):
            statement, added = sql.claim_read_host(room=demand, columns=_host_columns())
            rows = _fetch(db, statement, [*added, host_id, generation])
            if not rows:
                # Waiting locked the row even though it no longer qualifies: give the lock back, so
                # that other launches do not skip a host this one did not claim.
                transaction.set_rollback(True, using=db.alias)
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
            raise
        return None
    return _host(db, rows[0][2:]) if rows else None


def _fetch(db: BaseDatabaseWrapper, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a placement statement on ``db`` (prepared, on PostgreSQL) and return its rows.

    The cursor is wrapped as Django wraps its own, so query logging, ``execute_wrapper`` hooks and
    error translation see it like any other query.
    """
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(statement, list(params))
            return cursor.fetchall()
    import psycopg  # only deployments on PostgreSQL have it
    from psycopg.types.numeric import Int8

    db.ensure_connection()
    db.validate_thread_sharing()
    raw: Any = psycopg.Cursor(db.connection)  # binds on the server, so it can be prepared
    wrapped = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    # Every integer as a bigint: psycopg would pick the smallest type for each value, and each mix
    # of types would be prepared as a statement of its own.
    typed: list[Any] = [Int8(value) if type(value) is int else value for value in params]
    with wrapped as cursor:
        cursor.execute(statement, typed)
        return cursor.fetchall()


@functools.cache
def _host_columns() -> tuple[str, ...]:
    return tuple(f'"{field.column}"' for field in Host._meta.concrete_fields)


# Per connection (each thread has its own): each host column and how the ORM converts its values.
_Converters = list[tuple[Any, list[Callable[..., Any]]]]
_converters: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _Converters] = weakref.WeakKeyDictionary()


def _host(db: BaseDatabaseWrapper, row: Sequence[Any]) -> Host:
    """A Host from its columns in ``_host_columns`` order, converted as the ORM converts them."""
    fields = Host._meta.concrete_fields
    converters = _converters.get(db)
    if converters is None:
        columns = [field.get_col(Host._meta.db_table) for field in fields]
        converters = [
            (column, [*db.ops.get_db_converters(column), *column.get_db_converters(db)]) for column in columns
        ]
        _converters[db] = converters
    values = list(row)
    for index, (column, field_converters) in enumerate(converters):
        for converter in field_converters:
            values[index] = converter(values[index], column, db)
    return Host.from_db(db.alias, [field.attname for field in fields], values)


def _any_host(where: str, params: list[object]) -> bool:
    return bool(list(Host.objects.raw(f"{sql.every_host(where, params)[0]} LIMIT 1", params)))


def no_capacity(demand: StackDemand) -> NoCapacity:
    """Why no host passes the filters for ``demand`` (a few queries, only when placement fails)."""
    if not Host.objects.filter(enabled=True, healthy=True).exists():
        return NoCapacity("no host is enabled and healthy; ask an operator to add or repair one")
    if not Host.objects.filter(USABLE).exists():
        return NoCapacity("every enabled and healthy host is draining; ask an operator to undrain or add one")
    if len(demand.domain_types) > 1:
        kinds = ", ".join(sorted(demand.domain_types))
        return NoCapacity(f"the tiers ask for different domain types ({kinds}) but a stack runs on one host")
    for arch in sorted(demand.arches):
        runs, params = sql.runs(arches=frozenset([arch]))
        if not _any_host(f"{sql.USABLE} AND {runs}", params):
            return NoCapacity(f"no enabled and healthy host runs {arch} guests")
    for domain_type in demand.domain_types:
        if not Host.objects.filter(USABLE, domain_type=domain_type).exists():
            return NoCapacity(f"no enabled and healthy host runs {domain_type} domains")
    runs, params = sql.runs(arches=demand.arches, domain_types=demand.domain_types)
    if not _any_host(f"{sql.USABLE} AND {runs}", params):
        arches = " and ".join(sorted(demand.arches))
        return NoCapacity(f"no enabled and healthy host runs {arches} guests together")
    if not _any_host(*sql.eligible(demand)):
        return NoCapacity(f"no host is large enough for {demand.describe()}, even empty")
    return NoCapacity(f"no host has room for {demand.describe()} right now")


def room_for(demand: StackDemand) -> NoCapacity | None:
    """Whether a launch of ``demand`` would find a host now, judged as ``claim_host`` judges it; a
    preview (what the launch dialog says before anything is sent), so it reads without locking.

    None when some host that takes launches (enabled, healthy, not draining, running the stack's
    architectures) has room next to what its counters say it holds; else why none has, in
    ``no_capacity``'s words. The claim still decides: another launch may take the room meanwhile.
    """
    statement, params = sql.every_host(*sql.eligible(demand), columns=sql.COUNTED_LOAD)
    if any(_load(host).fits(demand) for host in Host.objects.raw(statement, params)):
        return None
    return no_capacity(demand)


@dataclass(frozen=True)
class HostLoad:
    """What placement has handed out on a host, against what it may hand out."""

    host: Host
    vcpus: int
    memory_mib: int
    disk_gib: int
    instances: int
    vcpu_capacity: int
    memory_capacity_mib: int
    disk_capacity_gib: int | None  # None: the pool's size is unknown

    def fits(self, demand: StackDemand) -> bool:
        return (
            self.vcpus + demand.vcpus <= self.vcpu_capacity
            and self.memory_mib + demand.memory_mib <= self.memory_capacity_mib
            and (self.disk_capacity_gib is None or self.disk_gib + demand.disk_gib <= self.disk_capacity_gib)
        )


def host_loads() -> list[HostLoad]:
    """The load of every host, by name, in one query: the same capacities placement uses, and what the
    host's instances hold, summed from them (what its counters should say)."""
    postgresql = transaction.get_connection().vendor == "postgresql"
    statement, params = sql.read(chosen=sql.every_host("1 = 1", []), order="c.name", postgresql=postgresql)
    return [_load(host) for host in Host.objects.raw(statement, params)]


def _load(host: Host) -> HostLoad:
    # Capacities are floored, as comparing whole vCPUs, MiB and GiB against them does.
    read = host.__dict__
    return HostLoad(
        host=host,
        vcpus=int(read["used_vcpus"]),
        memory_mib=int(read["used_memory_mib"]),
        disk_gib=int(read["used_disk_gib"]),
        instances=int(read["instance_count"]),
        vcpu_capacity=int(read["cap_vcpus"]),
        memory_capacity_mib=int(read["cap_memory_mib"]),
        disk_capacity_gib=int(Decimal(read["cap_disk_bytes"]) // GIB) if host.pool_capacity_bytes else None,
    )


def _port_is_free_locally(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # QEMU's user network binds its forwards with SO_REUSEADDR, so a port whose only sockets
        # are closed connections in TIME_WAIT (a restart right after serving pages) is free to it;
        # a listener of another program still refuses this bind.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _ports_are_real_here(host: Host) -> bool:
    # Only a local libvirt URI (no host part) lets us probe the port on this machine, and only on a
    # host whose guests really bind their published ports (a simulated host's never do).
    _scheme, _, rest = host.uri.partition("://")
    return rest.startswith("/") and host.guests_bind_host_ports


def allocate_port(host: Host) -> int:
    """Lowest port in PUBLISH_PORT_RANGE not reserved on ``host`` (see ``allocate_ports``)."""
    return allocate_ports(host, 1)[0]


def allocate_ports(host: Host, count: int) -> list[int]:
    """The ``count`` lowest ports in PUBLISH_PORT_RANGE not reserved on ``host`` (and, on a local host, not bound).

    Runs after ``claim_host`` in the same transaction: the claimed host's row lock keeps two launches
    from taking the same port (and the unique constraint on (host, port) would refuse it anyway).
    Ask for all of a stack's ports at once: ports chosen but not yet written are not "reserved".
    """
    reserved = set(PublishedPort.objects.filter(host=host).values_list("host_port", flat=True))
    check_locally = _ports_are_real_here(host)
    low, high = settings.PUBLISH_PORT_RANGE
    chosen: list[int] = []
    for port in range(low, high + 1):
        if len(chosen) == count:
            break
        if port in reserved:
            continue
        if check_locally and not _port_is_free_locally(bind_address(host), port):
            continue
        chosen.append(port)
    if len(chosen) < count:
        wanted = "free port" if count == 1 else f"{count} free ports"
        raise NoCapacity(f"host {host.name} has no {wanted} left in {low}-{high}")
    return chosen

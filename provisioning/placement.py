"""Placement: one host for a whole stack, claimed without locking the others, and free ports on it.

All tiers of a stack go to one host: the stack network is a libvirt network on that host.

Filter and weigh, in one SELECT. A host passes when it is enabled, healthy and not draining, runs
every architecture (and the domain type, if a tier names one) the stack asks for, and has room for
the whole stack: vCPUs against ``cpus * cpu_overcommit``, RAM against ``(memory_mib -
memory_reserved_mib) * memory_overcommit`` (1 by default: not over-committed), disk against
``pool_capacity_bytes * disk_overcommit`` (a host whose pool size is unknown is not judged on disk).
What a host holds is summed in the same statement from the instances that claim it (statuses in
``ACTIVE_STATUSES``). The weighers order what passes, judging each host as it would be with the
stack on it (so a stack's size counts against small hosts more than against big ones): ``spread``
(the default) puts a stack on the host left with the largest share of its RAM free, then the one
with the fewest instances, then the one left with the largest share of its vCPUs free; ``pack``
the other way round (best fit), so hosts fill one after the other (``settings.PLACEMENT``, from
``PORTAL_PLACEMENT``). The database filters, orders and returns the best few, so a placement
costs the same number of queries for ten hosts as for a thousand; spread reads a window of hosts
rather than all (see ``claim_host``), so its read costs about the same too.

Claims, as Nova's placement does it with resource-provider generations. Reading takes no lock. The
chosen host is claimed with ``UPDATE host SET generation = generation + 1 WHERE id = %s AND
generation = %s`` (and still enabled, healthy and not draining). One row updated: no launch has
claimed the host since we read its load; the row stays locked until our transaction commits the
instance rows that are the claim, so the next launch on that host waits for them or sees them. No
row: someone claimed the host in between and what we read about it is stale, so we try the next
candidate of the same read, and read again when none is left. Launches that choose different hosts
never wait for each other, which is what lets throughput grow with hosts. A first try skips a host
whose row another launch holds (``FOR UPDATE SKIP LOCKED``) instead of queueing behind it; only
when every candidate is held does a launch wait, for the best one.

The read is written in SQL (it runs on PostgreSQL and SQLite alike) rather than built with the
ORM: it runs on every launch, and building and compiling it through the ORM took longer than the
database took to run it. Values are always parameters; only this module's own fragments are
pasted into the text.
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q

from portal.errors import NoCapacity
from provisioning.demand import GIB, StackDemand
from provisioning.models import ACTIVE_STATUSES, Host, Instance, PublishedPort


class Strategy(StrEnum):
    SPREAD = "spread"
    PACK = "pack"


# How many of the best hosts one read returns: enough that parallel launches which read the same
# order find another host when the best is being claimed, few enough to stay cheap.
CANDIDATES = 8
# Spread weighs a window of this many hosts (of those that pass the filters and could hold the
# stack empty), from a random start, rather than all of them; see ``claim_host``.
SAMPLE = 16
# Reads before a launch gives up because other launches keep claiming every host it picks.
ROUNDS = 5
# What the database answers when a claim lost to another transaction in a way a new read can fix:
# serialization failure, deadlock, lock timeout.
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}

# A host that may get new stacks at all (checked again inside the claim's UPDATE, so an operator's
# drain that commits between our read and our claim wins).
USABLE = Q(enabled=True, healthy=True, draining=False)
_USABLE_SQL = "h.enabled AND h.healthy AND NOT h.draining"

_HOST = Host._meta.db_table
_INSTANCE = Instance._meta.db_table

# The weighers, as ORDER BY clauses over the columns the read computes.
_ORDER = {
    Strategy.SPREAD: "free_memory_share DESC NULLS LAST, instance_count ASC, free_vcpu_share DESC NULLS LAST, c.id",
    Strategy.PACK: "free_memory_share ASC NULLS LAST, instance_count DESC, free_vcpu_share ASC NULLS LAST, c.id",
}

Params = list[object]


def _capacities(h: str) -> tuple[str, str, str]:
    """SQL for what host ``h`` may hand out: vCPUs, MiB of RAM, bytes of disk."""
    memory = (
        f"CASE WHEN {h}.memory_mib > {h}.memory_reserved_mib THEN {h}.memory_mib - {h}.memory_reserved_mib ELSE 0 END"
    )
    return (
        f"({h}.cpus * {h}.cpu_overcommit)",
        f"(({memory}) * {h}.memory_overcommit)",
        f"({h}.pool_capacity_bytes * {h}.disk_overcommit)",
    )


def _room_when_empty(demand: StackDemand) -> tuple[str, Params]:
    """SQL: host ``h`` could hold the whole stack if nothing else ran on it."""
    vcpus, memory, disk = _capacities("h")
    return (
        f"{vcpus} >= %s AND {memory} >= %s AND (h.pool_capacity_bytes = 0 OR {disk} >= %s)",
        [demand.vcpus, demand.memory_mib, demand.disk_gib * GIB],
    )


def _runs(*, arches: frozenset[str] = frozenset(), domain_types: frozenset[str] = frozenset()) -> tuple[str, Params]:
    """SQL: host ``h`` runs every arch in ``arches`` (``guest_arches`` is a comma-separated list) and domain type."""
    conditions: list[str] = ["1 = 1"]
    params: Params = []
    for arch in sorted(arches):
        conditions.append("(',' || h.guest_arches || ',') LIKE %s ESCAPE '!'")
        params.append("%," + arch.replace("!", "!!").replace("%", "!%").replace("_", "!_") + ",%")
    for domain_type in sorted(domain_types):
        conditions.append("h.domain_type = %s")
        params.append(domain_type)
    return " AND ".join(conditions), params


def _eligible(demand: StackDemand) -> tuple[str, Params]:
    """SQL: host ``h`` passes every filter that does not depend on what it holds."""
    runs, runs_params = _runs(arches=demand.arches, domain_types=demand.domain_types)
    room, room_params = _room_when_empty(demand)
    return f"{_USABLE_SQL} AND {runs} AND {room}", runs_params + room_params


def _read(
    *, eligible: str, params: Params, sample: int | None, room: StackDemand | None, order: str, limit: int | None
) -> list[Host]:
    """Hosts matching ``eligible`` (or a window of ``sample`` of them), each with what it holds and may hold.

    Every host comes with ``used_vcpus``, ``used_memory_mib``, ``used_disk_gib``, ``instance_count``,
    ``cap_vcpus``, ``cap_memory_mib``, ``cap_disk_bytes``, and the shares of its RAM and vCPUs that
    would be free with the stack ``room`` on it (``free_memory_share``, ``free_vcpu_share``); with
    ``room``, only the hosts that have room for it. The sums are made per chosen host through the
    index on ``instance.host_id`` (a join, grouped by host), so a read costs what those hosts hold,
    not what the whole cloud holds.
    """
    vcpus, memory, disk = _capacities("h")
    statuses = [str(status) for status in ACTIVE_STATUSES]
    where, where_params = ("1 = 1", [])
    if room:
        where = "c.cap_vcpus >= c.used_vcpus + %s AND c.cap_memory_mib >= c.used_memory_mib + %s"
        where += " AND (c.pool_capacity_bytes = 0 OR c.cap_disk_bytes >= (c.used_disk_gib + %s) * CAST(%s AS BIGINT))"
        where_params = [room.vcpus, room.memory_mib, room.disk_gib, GIB]
    if sample:
        chosen, chosen_params = _window(eligible, params, sample)
    else:
        chosen, chosen_params = f"SELECT h.id FROM {_HOST} h WHERE {eligible}", params  # noqa: S608
    # Only our own fragments are pasted in; every value is a parameter.
    sql = f"""
        WITH eligible AS MATERIALIZED ({chosen})
        SELECT c.*,
               (c.cap_memory_mib - c.used_memory_mib - %s) * 1.0 / NULLIF(c.cap_memory_mib, 0) AS free_memory_share,
               (c.cap_vcpus - c.used_vcpus - %s) * 1.0 / NULLIF(c.cap_vcpus, 0) AS free_vcpu_share
        FROM (
            SELECT h.*, {vcpus} AS cap_vcpus, {memory} AS cap_memory_mib, {disk} AS cap_disk_bytes,
                   COALESCE(SUM(i.vcpus), 0) AS used_vcpus, COALESCE(SUM(i.memory_mib), 0) AS used_memory_mib,
                   COALESCE(SUM(i.disk_gib), 0) AS used_disk_gib, COUNT(i.id) AS instance_count
            FROM eligible e
            JOIN {_HOST} h ON h.id = e.id
            LEFT JOIN {_INSTANCE} i ON i.host_id = h.id AND i.status IN ({", ".join(["%s"] * len(statuses))})
            GROUP BY h.id
        ) c
        WHERE {where}
        ORDER BY {order}
        {"LIMIT %s" if limit else ""}
    """  # noqa: S608
    taken = [room.memory_mib, room.vcpus] if room else [0, 0]
    all_params = [
        *chosen_params,
        *taken,
        *statuses,
        *where_params,
        *([limit] if limit else []),
    ]
    return list(Host.objects.raw(sql, all_params))


def _window(eligible: str, params: Params, size: int) -> tuple[str, Params]:
    """SQL: the ids of ``size`` hosts matching ``eligible``, the first ones from a random id onwards.

    Consecutive ids from a random start, wrapping round to the lowest, rather than ``ORDER BY
    random()``: the window is read through the primary key index, so it costs the same for ten
    hosts as for ten thousand, where sorting every host at random scans them all. A host after a
    gap in the ids (hosts removed, or filtered out) starts more windows than the others; the
    weighers, which take the emptiest host of each window, even that out.
    """
    start = f"(SELECT MIN(id) + %s %% (MAX(id) - MIN(id) + 1) FROM {_HOST})"  # noqa: S608 - "%%": a literal %
    onwards, wrapped = (
        f"SELECT * FROM (SELECT h.id FROM {_HOST} h WHERE h.id {op} {start} AND {eligible} ORDER BY h.id LIMIT %s)"  # noqa: S608
        for op in (">=", "<")
    )
    offset = random.randrange(1 << 62)  # noqa: S311 - spreads load, guards nothing
    sql = f"SELECT id FROM ({onwards} AS onwards UNION ALL {wrapped} AS wrapped) AS w LIMIT %s"  # noqa: S608
    return sql, [offset, *params, size, offset, *params, size, size]


def candidate_hosts(demand: StackDemand, *, strategy: Strategy | None = None, sample: int | None = None) -> list[Host]:
    """The best ``CANDIDATES`` hosts that pass every filter for ``demand``, best first, loads annotated. No lock.

    With ``sample``, only a window of that many hosts (of those that pass the filters that do not
    depend on load) is summed and weighed.
    """
    eligible, params = _eligible(demand)
    order = _ORDER[strategy or Strategy(settings.PLACEMENT)]
    return _read(eligible=eligible, params=params, sample=sample, room=demand, order=order, limit=CANDIDATES)


def claim_host(demand: StackDemand, *, strategy: Strategy | None = None) -> Host:
    """Choose a host for the whole stack and claim it; call inside the launch transaction.

    The claim holds until the transaction ends: the instance rows written after it count against
    the host for every later launch, and a launch that read the host before them cannot claim it.
    ``NoCapacity`` says why no host would do.

    Spread weighs a sample of ``SAMPLE`` hosts (a window of ids from a random start, see
    ``_window``), as Nova's scheduler does at scale (``host_subset_size``,
    ``randomize_allocation_candidates``), for two reasons. Summing what every host of a large cloud
    holds on every launch is what a placement costs: about 30 ms for 1,000 hosts holding 30,000
    instances, against 1-3 ms for a window. And parallel launches that weigh the same hosts all pick
    the same one and then queue on its row. The best of a window of 16 is, on average, among the
    emptiest 6% of the cloud, and a cloud of up to ``SAMPLE`` hosts is weighed whole. Only when no
    host of the window has room are all hosts read. Pack weighs all hosts: its point is the one
    fullest host that fits, which a window would miss.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("claim_host runs inside the launch transaction: its row lock is the claim")
    chosen = strategy or Strategy(settings.PLACEMENT)
    for _round in range(ROUNDS):
        candidates: list[Host] = []
        if chosen is Strategy.SPREAD:
            candidates = candidate_hosts(demand, strategy=chosen, sample=SAMPLE)
        if not candidates:
            candidates = candidate_hosts(demand, strategy=chosen)
        if not candidates:
            raise no_capacity(demand)
        for host in candidates:
            if _claim(host, wait=False):
                return host
        # Every candidate is held by a launch in progress or was claimed since we read: wait for the
        # best one's launch to end, then claim it if that launch did not take it after all.
        if _claim(candidates[0], wait=True):
            return candidates[0]
    raise NoCapacity(
        f"other launches claimed every host with room for {demand.describe()} {ROUNDS} times in a row; try again"
    )


def _claim(host: Host, *, wait: bool) -> bool:
    """Bump the host's generation if it is still the one we read; the row stays locked until commit.

    Without ``wait``, a host whose row another launch holds right now is skipped, not queued behind:
    such a claim never waits for a lock, so it cannot deadlock or time out. With ``wait`` it can, and
    it runs in a savepoint so that losing that way leaves the launch transaction usable.
    """
    unchanged = Host.objects.filter(USABLE, pk=host.pk, generation=host.generation)
    if not wait:
        held_by_nobody = unchanged.select_for_update(skip_locked=True).order_by().values("pk")
        claimed = Host.objects.filter(pk__in=held_by_nobody).update(generation=F("generation") + 1)
    else:
        try:
            with transaction.atomic():
                claimed = unchanged.update(generation=F("generation") + 1)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                raise
            return False
    if claimed:
        host.generation += 1
    return bool(claimed)


def _any_host(where: str, params: Params) -> bool:
    sql = f"SELECT h.id FROM {_HOST} h WHERE {where} LIMIT 1"  # noqa: S608 - our fragments; values are parameters
    return bool(list(Host.objects.raw(sql, params)))


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
        runs, params = _runs(arches=frozenset([arch]))
        if not _any_host(f"{_USABLE_SQL} AND {runs}", params):
            return NoCapacity(f"no enabled and healthy host runs {arch} guests")
    for domain_type in demand.domain_types:
        if not Host.objects.filter(USABLE, domain_type=domain_type).exists():
            return NoCapacity(f"no enabled and healthy host runs {domain_type} domains")
    runs, params = _runs(arches=demand.arches, domain_types=demand.domain_types)
    if not _any_host(f"{_USABLE_SQL} AND {runs}", params):
        arches = " and ".join(sorted(demand.arches))
        return NoCapacity(f"no enabled and healthy host runs {arches} guests together")
    if not _any_host(*_eligible(demand)):
        return NoCapacity(f"no host is large enough for {demand.describe()}, even empty")
    return NoCapacity(f"no host has room for {demand.describe()} right now")


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
    """The load of every host, by name, in one query (the same sums and capacities placement uses)."""
    hosts = _read(eligible="1 = 1", params=[], sample=None, room=None, order="c.name", limit=None)
    return [_load(host) for host in hosts]


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
        if check_locally and not _port_is_free_locally(host.public_address, port):
            continue
        chosen.append(port)
    if len(chosen) < count:
        wanted = "free port" if count == 1 else f"{count} free ports"
        raise NoCapacity(f"host {host.name} has no {wanted} left in {low}-{high}")
    return chosen

"""The SQL that placement runs: its filters, the load of each host, the window of hosts, and the claim.

Each function returns SQL text and its parameters. Only this module's own fragments are pasted into
the text; every value is a parameter. The text of a statement depends only on the shape of what is
asked (strategy, window or not, how many architectures and domain types), never on the values, so
a database that prepares statements prepares each shape once per connection.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from provisioning.demand import GIB, StackDemand
from provisioning.models import ACTIVE_STATUSES, COMPUTE_STATUSES, Host, Instance, Status

Params = list[object]

HOST = Host._meta.db_table
INSTANCE = Instance._meta.db_table

# A host that may get new stacks at all.
USABLE = "h.enabled AND h.healthy AND NOT h.draining AND NOT h.maintenance"

# The weighers, as ORDER BY clauses over the columns ``loads`` computes (table alias ``c``).
SPREAD_ORDER = "free_memory_share DESC NULLS LAST, instance_count ASC, free_vcpu_share DESC NULLS LAST, c.id"
PACK_ORDER = "free_memory_share ASC NULLS LAST, instance_count DESC, free_vcpu_share ASC NULLS LAST, c.id"

# Every status in which an instance does not count against its host (``ACTIVE_STATUSES`` do).
_INACTIVE = [str(status) for status in Status if status not in ACTIVE_STATUSES]
# Every status in which an instance holds no vCPUs or memory (``COMPUTE_STATUSES`` do): shelved ones too.
_NO_COMPUTE = [str(status) for status in Status if status not in COMPUTE_STATUSES]


def capacities(h: str) -> tuple[str, str, str]:
    """SQL for what host ``h`` may hand out: vCPUs, MiB of RAM, bytes of disk."""
    memory = (
        f"CASE WHEN {h}.memory_mib > {h}.memory_reserved_mib THEN {h}.memory_mib - {h}.memory_reserved_mib ELSE 0 END"
    )
    return (
        f"({h}.cpus * {h}.cpu_overcommit)",
        f"(({memory}) * {h}.memory_overcommit)",
        f"({h}.pool_capacity_bytes * {h}.disk_overcommit)",
    )


def runs(*, arches: frozenset[str] = frozenset(), domain_types: frozenset[str] = frozenset()) -> tuple[str, Params]:
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


def eligible(demand: StackDemand, *, only: Sequence[int] | None = None) -> tuple[str, Params]:
    """SQL: host ``h`` passes every filter that does not depend on what it holds (and is one of ``only``).

    ``only`` narrows the hosts to those a filter read in Python let through (free dedicated CPUs,
    ``provisioning.qos``); its length shapes the statement, so only such launches make more shapes.
    """
    runs_sql, runs_params = runs(arches=demand.arches, domain_types=demand.domain_types)
    vcpus, memory, disk = capacities("h")
    room = f"{vcpus} >= %s AND {memory} >= %s AND (h.pool_capacity_bytes = 0 OR {disk} >= %s)"
    room_params: Params = [demand.vcpus, demand.memory_mib, demand.disk_gib * GIB]
    where, params = f"{USABLE} AND {runs_sql} AND {room}", runs_params + room_params
    if only is not None:
        ids = sorted(only) or [0]  # no host: an id no row has
        where += f" AND h.id IN ({', '.join(['%s'] * len(ids))})"
        params = [*params, *ids]
    return where, params


def _counted_load() -> str:
    vcpus, memory, disk = capacities("h")
    return (
        f"h.id, h.generation, h.pool_capacity_bytes, {vcpus} AS cap_vcpus, {memory} AS cap_memory_mib,"
        f" {disk} AS cap_disk_bytes, h.allocated_vcpus AS used_vcpus, h.allocated_memory_mib AS used_memory_mib,"
        " h.allocated_disk_gib AS used_disk_gib, h.allocated_instances AS instance_count"
    )


# The columns of host ``h`` that ``claim`` weighs it by: what it may hand out, and its load as its
# counters (``Host.allocated_*``) say, so that choosing the hosts reads their load too.
COUNTED_LOAD = _counted_load()


def every_host(where: str, params: Params, *, columns: str = "h.id") -> tuple[str, Params]:
    """SQL: ``columns`` (by default the id) of every host ``h`` matching ``where``."""
    return f"SELECT {columns} FROM {HOST} h WHERE {where}", params  # noqa: S608 - our fragments; values are parameters


def window(where: str, params: Params, *, size: int, offset: int, columns: str = "h.id") -> tuple[str, Params]:
    """SQL: ``columns`` (by default the id) of ``size`` hosts ``h`` matching ``where``, the first ones
    from a start that ``offset`` picks.

    Consecutive ids from the start (``offset`` modulo the span of ids), wrapping round to the lowest,
    rather than ``ORDER BY random()``: the window is read through the primary key index, so it costs
    the same for ten hosts as for ten thousand, where sorting every host at random scans them all. A
    host after a gap in the ids (hosts removed, or filtered out) starts more windows than the
    others; the weighers, which take the emptiest host of each window, even that out.
    """
    start = f"(SELECT MIN(id) + CAST(%s AS BIGINT) %% (MAX(id) - MIN(id) + 1) FROM {HOST})"  # noqa: S608 - "%%": a literal %
    onwards, wrapped = (
        f"SELECT * FROM (SELECT {columns} FROM {HOST} h WHERE h.id {op} {start} AND {where} ORDER BY h.id LIMIT %s)"  # noqa: S608
        for op in (">=", "<")
    )
    sql = f"SELECT * FROM ({onwards} AS onwards UNION ALL {wrapped} AS wrapped) AS w LIMIT %s"  # noqa: S608
    return sql, [offset, *params, size, offset, *params, size, size]


def _loads(columns: str, room: StackDemand | None, *, postgresql: bool) -> tuple[str, Params]:
    """SQL: a row per host of the ``eligible`` CTE with ``columns`` of it (alias ``h``) and its load.

    The load is summed per host through the index on ``instance.host_id``, so it costs what those
    hosts hold, not what the whole cloud holds: on PostgreSQL in a ``LATERAL`` subquery per host
    (no sorting or hashing of all their instances to group them), elsewhere in a join grouped by
    host. Each row has ``cap_vcpus``, ``cap_memory_mib``, ``cap_disk_bytes``, ``used_vcpus``,
    ``used_memory_mib``, ``used_disk_gib``, ``instance_count``, and the shares of its RAM and vCPUs
    that would be free with the stack ``room`` on it (``free_memory_share``, ``free_vcpu_share``).
    """
    vcpus, memory, disk = capacities("h")
    # The status is tested in the sums, not where the rows are found: found by status too, the rows
    # of one host would be the intersection of the host's index entries with those of every active
    # instance of the cloud, a plan PostgreSQL takes when it misjudges how many rows are active. It
    # is tested against the few statuses that do not count (a comparison or two, against a dozen), as
    # it runs four times for every instance summed.
    active = f"FILTER (WHERE i.status NOT IN ({', '.join(['%s'] * len(_INACTIVE))}))" if _INACTIVE else ""
    computing = f"FILTER (WHERE i.status NOT IN ({', '.join(['%s'] * len(_NO_COMPUTE))}))"
    sums = (
        f"COALESCE(SUM(i.vcpus) {computing}, 0) AS used_vcpus,"
        f" COALESCE(SUM(i.memory_mib) {computing}, 0) AS used_memory_mib,"
        f" COALESCE(SUM(i.disk_gib) {active}, 0) AS used_disk_gib, COUNT(i.id) {active} AS instance_count"
    )
    if postgresql:
        held = f"""
            s.used_vcpus, s.used_memory_mib, s.used_disk_gib, s.instance_count
            FROM eligible e JOIN {HOST} h ON h.id = e.id
            CROSS JOIN LATERAL (SELECT {sums} FROM {INSTANCE} i WHERE i.host_id = h.id) s
        """  # noqa: S608
    else:
        held = f"""
            {sums}
            FROM eligible e JOIN {HOST} h ON h.id = e.id
            LEFT JOIN {INSTANCE} i ON i.host_id = h.id
            GROUP BY h.id
        """
    sql = f"""
        SELECT c.*,
               (c.cap_memory_mib - c.used_memory_mib - %s) * 1.0 / NULLIF(c.cap_memory_mib, 0) AS free_memory_share,
               (c.cap_vcpus - c.used_vcpus - %s) * 1.0 / NULLIF(c.cap_vcpus, 0) AS free_vcpu_share
        FROM (SELECT {columns}, {vcpus} AS cap_vcpus, {memory} AS cap_memory_mib, {disk} AS cap_disk_bytes, {held}) c
    """  # noqa: S608
    taken = [room.memory_mib, room.vcpus] if room else [0, 0]
    return sql, [*taken, *(_NO_COMPUTE * 2), *(_INACTIVE * 2)]


def _has_room(room: StackDemand) -> tuple[str, Params]:
    """SQL: the host of a ``_loads`` row (alias ``c``) has room for the stack ``room`` next to what it holds."""
    sql = "c.cap_vcpus >= c.used_vcpus + %s AND c.cap_memory_mib >= c.used_memory_mib + %s"
    sql += " AND (c.pool_capacity_bytes = 0 OR c.cap_disk_bytes >= (c.used_disk_gib + %s) * CAST(%s AS BIGINT))"
    return sql, [room.vcpus, room.memory_mib, room.disk_gib, GIB]


def read(*, chosen: tuple[str, Params], order: str, postgresql: bool) -> tuple[str, Params]:
    """SQL: every host of ``chosen`` (SQL for host ids) with every column of it and its load, in ``order``."""
    loads, loads_params = _loads("h.*", None, postgresql=postgresql)
    sql = f"WITH eligible AS MATERIALIZED ({chosen[0]}) SELECT * FROM ({loads}) c ORDER BY {order}"  # noqa: S608
    return sql, [*chosen[1], *loads_params]


def claim(
    *,
    chosen: tuple[str, Params],
    room: StackDemand,
    order: str,
    candidates: int,
    columns: Sequence[str],
    postgresql: bool,
) -> tuple[str, Params]:
    """SQL: weigh the hosts of ``chosen`` (SQL for hosts with the ``COUNTED_LOAD`` columns) that have
    room for ``room`` and claim the best, in one statement.

    It answers one row when any host has room, none otherwise: the best host's id and generation as
    read, then ``columns`` of the host claimed (NULL when none was).

    On PostgreSQL the best ``candidates`` are read without a lock; the first of them whose row no
    other transaction holds (``FOR NO KEY UPDATE SKIP LOCKED``: the lock the update takes anyway,
    which the key-share locks of rows being inserted that refer to the host do not conflict with)
    and whose generation is still the one read is locked and its generation bumped. A row that
    another launch claimed and committed after this statement began is re-read under the lock with
    its new generation, so it fails the test and the next candidate is tried. No candidate left:
    nothing is claimed, and the caller may wait for the best one.

    Elsewhere (SQLite, where a transaction that writes holds the whole database from its first
    statement, so nothing can change between the read and the write) the best host is claimed.
    """
    has_room, room_params = _has_room(room)
    # The hosts of ``chosen`` come with their load: no instance is read, no host row read twice.
    weighed = f"""
        candidates AS MATERIALIZED (
            SELECT c.id, c.generation, c.instance_count,
                   (c.cap_memory_mib - c.used_memory_mib - %s) * 1.0 / NULLIF(c.cap_memory_mib, 0) AS free_memory_share,
                   (c.cap_vcpus - c.used_vcpus - %s) * 1.0 / NULLIF(c.cap_vcpus, 0) AS free_vcpu_share
            FROM eligible c
            WHERE {has_room}
            ORDER BY {order}
            LIMIT %s
        )
    """  # noqa: S608
    taken = [room.memory_mib, room.vcpus]
    params = [*chosen[1], *taken, *room_params, candidates if postgresql else 1, *_added(room)]
    returned = ", ".join(columns)
    if postgresql:
        sql = f"""
            WITH eligible AS MATERIALIZED ({chosen[0]}), {weighed},
            unheld AS (
                SELECT h.id FROM {HOST} h JOIN candidates c ON c.id = h.id
                WHERE h.generation = c.generation AND {USABLE}
                ORDER BY {order}
                LIMIT 1
                FOR NO KEY UPDATE OF h SKIP LOCKED
            ),
            claimed AS (
                UPDATE {HOST} SET {_ADD} WHERE id = (SELECT id FROM unheld) RETURNING {returned}
            )
            SELECT best.id, best.generation, claimed.*
            FROM (SELECT c.id, c.generation FROM candidates c ORDER BY {order} LIMIT 1) best
            LEFT JOIN claimed ON TRUE
        """  # noqa: S608
        return _compact(sql), params
    sql = f"""
        WITH eligible AS MATERIALIZED ({chosen[0]}), {weighed}
        UPDATE {HOST} SET {_ADD} WHERE id = (SELECT id FROM candidates)
        RETURNING id, generation - 1, {returned}
    """  # noqa: S608
    return _compact(sql), params


# What a claim writes on the host it claims: a new generation, and the stack's demand added to its counters.
_ADD = (
    "generation = generation + 1, allocated_vcpus = allocated_vcpus + %s,"
    " allocated_memory_mib = allocated_memory_mib + %s, allocated_disk_gib = allocated_disk_gib + %s,"
    " allocated_instances = allocated_instances + %s"
)


def _added(room: StackDemand) -> Params:
    """The parameters of ``_ADD`` for the stack ``room``."""
    return [room.vcpus, room.memory_mib, room.disk_gib, len(room.instances)]


@functools.lru_cache(maxsize=256)
def _compact(sql: str) -> str:
    """``sql`` on one line with single spaces (no literal of ours holds a space): a client that caches
    the parsing of short statements (psycopg, up to 4 KiB) then parses it once, not on every launch.
    Remembered: the text holds no values, so there are as few texts as shapes of statement."""
    return " ".join(sql.split())


def claim_read_host(*, room: StackDemand, columns: Sequence[str]) -> tuple[str, Params]:
    """SQL: claim host %s for ``room`` if its generation is still %s and it may take stacks; waits for its row lock."""
    returned = ", ".join(f"h.{column}" for column in columns)
    sql = (
        f"UPDATE {HOST} AS h SET {_ADD} WHERE h.id = %s AND h.generation = %s AND {USABLE}"  # noqa: S608
        f" RETURNING h.id, h.generation - 1, {returned}"
    )
    return sql, _added(room)

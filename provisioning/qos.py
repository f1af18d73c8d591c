"""An instance's quality of service: its flavor's limits (copied at launch), under its host's ceilings.

At launch the flavor's limits are copied into ``Instance.qos`` (``flavor_qos``): an instance keeps
what it was launched with when an operator later edits the flavor. Its domain is defined with
``domain_qos``: each limit, or the host's ceiling when that is lower or the flavor sets none.

Dedicated CPUs: a flavor with ``dedicated_cpus`` has each vCPU pinned to a physical CPU of its own,
taken from its host's ``dedicated_cpu_set``. An instance holds its CPUs (``Instance.pinned_cpus``)
while it counts against its host (``ACTIVE_STATUSES``, shelved ones too, so that an unshelve finds
them again); deleting it gives them back. Taking them is safe only under the host's row lock, which
the launch's placement claim holds until the launch commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import F, Q

from portal.errors import NoCapacity
from provisioning.drivers.qos_types import DomainQos
from provisioning.drivers.qos_xml import (
    MAX_BYTES_SEC,
    MAX_CPU_SHARES,
    MAX_HOST_CPU,
    MAX_IOPS_SEC,
    MAX_KIB_SEC,
    MIN_CPU_SHARES,
)
from provisioning.models import ACTIVE_STATUSES, Flavor, Host, Instance

# The flavor's fields an instance keeps in ``Instance.qos``.
LIMIT_FIELDS = (
    "disk_read_bytes_sec",
    "disk_write_bytes_sec",
    "disk_read_iops_sec",
    "disk_write_iops_sec",
    "net_inbound_kib_sec",
    "net_outbound_kib_sec",
)
QOS_FIELDS = (*LIMIT_FIELDS, "cpu_shares", "dedicated_cpus")
# The largest value each flavor limit and host ceiling may take (the driver refuses larger ones).
MAXIMA = {
    **{
        name: MAX_IOPS_SEC if "iops" in name else MAX_KIB_SEC if "kib" in name else MAX_BYTES_SEC
        for name in LIMIT_FIELDS
    },
    "disk_bytes_sec_ceiling": MAX_BYTES_SEC,
    "disk_iops_sec_ceiling": MAX_IOPS_SEC,
    "net_kib_sec_ceiling": MAX_KIB_SEC,
}


def limit_problem(name: str, value: int | None) -> str | None:
    """Why ``value`` cannot be the flavor limit or host ceiling ``name`` (None: it can; empty is no limit)."""
    if value is None:
        return None
    if name == "cpu_shares":
        if not MIN_CPU_SHARES <= value <= MAX_CPU_SHARES:
            return f"from {MIN_CPU_SHARES} to {MAX_CPU_SHARES} (1024 is libvirt's default for one vCPU)"
        return None
    if not 1 <= value <= MAXIMA[name]:
        return f"from 1 to {MAXIMA[name]}, or empty for no limit"
    return None


def cpu_set_problem(text: str, *, host_cpus: int) -> str | None:
    """Why ``text`` cannot be a host's dedicated CPU set (None: it can), given its ``host_cpus`` (0: unknown)."""
    try:
        cpus = parse_cpu_set(text)
    except ValueError as exc:
        return str(exc)
    if host_cpus and cpus and max(cpus) >= host_cpus:
        return f"the host has CPUs 0 to {host_cpus - 1}; CPU {max(cpus)} is not one of them"
    return None


def flavor_qos(flavor: Flavor | None) -> dict[str, int | bool]:
    """What an instance of ``flavor`` keeps: the limits its flavor sets (none: an empty dict)."""
    if flavor is None:
        return {}
    kept: dict[str, int | bool] = {name: getattr(flavor, name) for name in QOS_FIELDS}
    return {name: value for name, value in kept.items() if value not in (None, False)}


def _lower(limit: object, ceiling: int | None) -> int | None:
    value = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    # Zero is refused on every way in; one stored regardless is no ceiling rather than a failed build.
    ceiling = ceiling or None
    if value is None or ceiling is None:
        return value if value is not None else ceiling
    return min(value, ceiling)


def _disk(qos: dict, kind: str, ceiling: int | None) -> tuple[int | None, int | None, int | None]:
    """(read, write, total) for ``kind`` ("bytes" or "iops") under a per-guest ``ceiling``.

    With no flavor limit the ceiling caps reads and writes together (libvirt's total); with one, each
    direction is capped (libvirt takes no total next to a read or write limit), so a guest limited
    one way only is held at the ceiling the other way.
    """
    read, write = qos.get(f"disk_read_{kind}_sec"), qos.get(f"disk_write_{kind}_sec")
    if read is None and write is None:
        return None, None, ceiling or None
    return _lower(read, ceiling), _lower(write, ceiling), None


def domain_qos(*, instance: Instance, host: Host) -> DomainQos:
    """The limits to define ``instance``'s domain with on ``host``."""
    qos = instance.qos if isinstance(instance.qos, dict) else {}
    read_bytes, write_bytes, total_bytes = _disk(qos, "bytes", host.disk_bytes_sec_ceiling)
    read_iops, write_iops, total_iops = _disk(qos, "iops", host.disk_iops_sec_ceiling)
    shares = qos.get("cpu_shares")
    return DomainQos(
        disk_read_bytes_sec=read_bytes,
        disk_write_bytes_sec=write_bytes,
        disk_total_bytes_sec=total_bytes,
        disk_read_iops_sec=read_iops,
        disk_write_iops_sec=write_iops,
        disk_total_iops_sec=total_iops,
        net_inbound_kib_sec=_lower(qos.get("net_inbound_kib_sec"), host.net_kib_sec_ceiling),
        net_outbound_kib_sec=_lower(qos.get("net_outbound_kib_sec"), host.net_kib_sec_ceiling),
        cpu_shares=shares if isinstance(shares, int) and not isinstance(shares, bool) else None,
        pinned_cpus=pinned_cpus(instance),
    )


# --- dedicated CPUs ------------------------------------------------------------------------------


def parse_cpu_set(text: str) -> frozenset[int]:
    """The CPUs of a set written as libvirt writes them (``2-5,8``); ``ValueError`` says what is wrong."""
    cpus: set[int] = set()
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise ValueError(f"'{part}' is neither a CPU number nor a range such as 2-5")
        first, last = int(low), int(high) if dash else int(low)
        if first > last or last > MAX_HOST_CPU:
            raise ValueError(f"'{part}' is not a range of CPUs from 0 to {MAX_HOST_CPU}")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def pinned_cpus(instance: Instance) -> tuple[int, ...]:
    """The physical CPU of each of ``instance``'s vCPUs, in vCPU order (empty: not pinned)."""
    return tuple(int(cpu) for cpu in instance.pinned_cpus.split(",") if cpu.strip().isdigit())


def _held(host_ids: Iterable[int]) -> dict[int, set[int]]:
    held: dict[int, set[int]] = defaultdict(set)
    rows = (
        Instance.objects.filter(host_id__in=list(host_ids), status__in=ACTIVE_STATUSES)
        .exclude(pinned_cpus="")
        .values_list("host_id", "pinned_cpus")
    )
    for host_id, text in rows:
        held[host_id].update(int(cpu) for cpu in text.split(",") if cpu.strip().isdigit())
    return held


def _dedicated_set(host: Host) -> frozenset[int]:
    try:
        return parse_cpu_set(host.dedicated_cpu_set)
    except ValueError:
        return frozenset()  # refused on every way in; a row edited by hand pins nothing


def free_dedicated_cpus(host: Host) -> list[int]:
    """``host``'s dedicated CPUs that no instance holds, lowest first."""
    return sorted(_dedicated_set(host) - _held([host.pk])[host.pk])


def hosts_with_free_cpus(count: int, hosts: Iterable[Host]) -> list[int]:
    """The ids of those ``hosts`` with at least ``count`` dedicated CPUs free (read without a lock)."""
    candidates = [host for host in hosts if host.dedicated_cpu_set.strip()]
    held = _held(host.pk for host in candidates)
    return [host.pk for host in candidates if len(_dedicated_set(host) - held[host.pk]) >= count]


def no_dedicated_room(count: int, hosts: Iterable[Host]) -> NoCapacity:
    """Why no host can pin ``count`` vCPUs, with the most any host has free."""
    candidates = [host for host in hosts if host.dedicated_cpu_set.strip()]
    if not candidates:
        return NoCapacity(
            f"the stack asks for {count} dedicated CPUs but no host that takes launches has a dedicated CPU set; "
            "ask an operator to give one"
        )
    held = _held(host.pk for host in candidates)
    most = max(len(_dedicated_set(host) - held[host.pk]) for host in candidates)
    return NoCapacity(
        f"the stack asks for {count} dedicated CPUs but no host has that many free (the most free on one host: {most})"
    )


def take_dedicated_cpus(host: Host, count: int) -> tuple[int, ...]:
    """``count`` of ``host``'s free dedicated CPUs; call with the host's row locked (the launch's claim)."""
    free = free_dedicated_cpus(host)
    if len(free) < count:
        raise NoCapacity(f"host {host.name} has {len(free)} dedicated CPUs free, not {count}")
    return tuple(free[:count])


def cpu_list(cpus: Iterable[int]) -> str:
    """``Instance.pinned_cpus`` for ``cpus`` in vCPU order."""
    return ",".join(str(cpu) for cpu in cpus)


def tier_qos(*, project_id: int, flavors: dict[str, str | None]) -> dict[str, dict[str, int | bool]]:
    """What each tier's instances keep (``flavor_qos``), from each tier's flavor name (None: no flavor).

    A project's own flavor wins over a shared one of the same name, as when the launch sized the tier.
    """
    kept: dict[str, dict[str, int | bool]] = {}
    for tier, name in flavors.items():
        flavor = None
        if name is not None:
            in_reach = Flavor.objects.filter(Q(project_id=project_id) | Q(project__isnull=True), name=name)
            flavor = in_reach.order_by(F("project").asc(nulls_last=True)).first()
        kept[tier] = flavor_qos(flavor)
    return kept


# How ``describe`` names each kept value, with its unit.
_WORDS = {
    "disk_read_bytes_sec": "disk reads {} B/s",
    "disk_write_bytes_sec": "disk writes {} B/s",
    "disk_read_iops_sec": "disk reads {} op/s",
    "disk_write_iops_sec": "disk writes {} op/s",
    "net_inbound_kib_sec": "network in {} KiB/s",
    "net_outbound_kib_sec": "network out {} KiB/s",
    "cpu_shares": "CPU shares {}",
}


def describe(kept: dict[str, int | bool]) -> str:
    """``kept`` (a flavor's or instance's QoS) in a few words, for lists; empty when it limits nothing."""
    words = [_WORDS[name].format(value) for name, value in kept.items() if name in _WORDS]
    if kept.get("dedicated_cpus"):
        words.append("dedicated CPUs")
    return ", ".join(words)

"""Activity samples of domains: CPU time and state, and the connections their published ports carry.

CPU time and state come from one bulk call per host (``virConnectGetAllDomainStats``), however many
domains are asked about. Connections cannot: published ports go through QEMU's user-mode network
(``-netdev user,hostfwd=...`` passed on QEMU's command line), which libvirt does not know of, so it
keeps no interface statistics for it. QEMU's monitor does: the HMP command ``info usernet`` lists
the sockets of every user-mode network, asked through libvirt (``virDomainQemuMonitorCommand``), so
it works over any connection, remote ones too. What it says (QEMU 7.2, libslirp 4.7; measured)::

    Hub -1 (pub0):
      Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
      TCP[ESTABLISHED]   22       127.0.0.1 53591       10.0.2.15  5432     0     0
      TCP[TIME_WAIT]     21       127.0.0.1 53591       10.0.2.15  5432     0     0
      TCP[HOST_FORWARD]  10       127.0.0.1 53591       10.0.2.15  5432     0     0

For a forwarded connection the "source" is the host's end of the published port, the same for every
client (the client's own address is not listed), so connections are named by the host socket that
holds them instead (``pub0/22``): unique while the connection is open; the kernel hands the number
out again once it is closed. A closed connection stays listed about ten seconds (TIME_WAIT); those
are counted, not named, because their numbers repeat between samples.

Asking QEMU's monitor directly makes libvirt mark the domain "tainted" (custom-monitor) in its log,
once per domain: a note for operators, nothing changes for the guest.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import libvirt
import libvirt_qemu

from provisioning.drivers.base import DomainActivity, DriverError, HostUnreachable, Unsupported
from provisioning.drivers.libvirt_connection import LibvirtConnection
from provisioning.drivers.libvirt_errors import Subject

logger = logging.getLogger(__name__)

_STATS = libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_STATE
_RUNNING = frozenset({libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED})  # blocked: running, idle
# States in which QEMU runs, so its monitor can be asked (a paused guest's network still holds connections).
_ACTIVE = _RUNNING | {libvirt.VIR_DOMAIN_PAUSED}
_USERNET = "info usernet"
_HMP = libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP  # a human monitor command, not QMP
# "Hub -1 (pub0):" (QEMU 5+) or "VLAN 0 (user.0):" (older): the user-mode network the lines below belong to.
_NETDEV_LINE = re.compile(r"^\S.*\((?P<netdev>[^()\s]+)\):\s*$")
_TCP_LINE = re.compile(r"^\s*TCP\[(?P<state>[A-Z_0-9]+)\]\s+(?P<fd>-?\d+)\s")
_LISTENER = "HOST_FORWARD"  # the published port itself, not a connection
_CLOSED = "TIME_WAIT"  # closed; QEMU forgets it after about ten seconds
# Not connections of the guest's: a socket without TCP state, and one the guest has not accepted. While
# a guest boots, its published port takes clients' connections at once and QEMU keeps trying to pass
# them on (SYN_SENT) for a while after the clients gave up.
_NOT_ACCEPTED = frozenset({"NONE", "SYN_SENT"})


@dataclass(frozen=True)
class UsernetConnections:
    """What ``info usernet`` says about connections: the open ones by name, and how many closed lately."""

    open: frozenset[str]
    recently_closed: int


def parse_usernet(text: str) -> UsernetConnections | None:
    """The connections an ``info usernet`` answer lists; None if the answer is not such a listing."""
    if not text.strip():
        return UsernetConnections(frozenset(), 0)  # no user-mode network: no published port to carry any
    if "Protocol[State]" not in text:
        return None  # "unknown command", or a format this parser does not know
    netdev = ""
    open_names: set[str] = set()
    closed = 0
    for line in text.splitlines():
        if header := _NETDEV_LINE.match(line):
            netdev = header["netdev"]
            continue
        row = _TCP_LINE.match(line)
        if row is None or row["state"] == _LISTENER or row["state"] in _NOT_ACCEPTED:
            continue
        if row["state"] == _CLOSED:
            closed += 1
        else:
            open_names.add(f"{netdev}/{row['fd']}")
    return UsernetConnections(frozenset(open_names), closed)


class LibvirtStats(LibvirtConnection):
    """Activity samples of one host's domains (a part of ``LibvirtDriver``)."""

    def domain_activity(self, *, names: list[str]) -> dict[str, DomainActivity]:
        """CPU time and state of each named domain in one call; their connections from QEMU's monitor.

        Names the host does not know are left out. A guest that is off holds no connections; one
        whose monitor cannot be asked (a driver without one, a guest going away) gets ``None``.
        """
        wanted = set(names)
        if not wanted:
            return {}
        with self._call("read domain statistics") as conn:
            records = [
                (domain, stats) for domain, stats in conn.getAllDomainStats(_STATS, 0) if domain.name() in wanted
            ]
        answers: dict[str, DomainActivity] = {}
        monitor_works = True
        for domain, stats in records:
            name = domain.name()
            state = stats.get("state.state")
            connections: UsernetConnections | None = UsernetConnections(frozenset(), 0)
            if state in _ACTIVE and monitor_works:
                try:
                    connections = self._usernet(domain, name)
                except Unsupported:
                    monitor_works = False  # the host's driver has no QEMU monitor: none of its domains does
                    connections = None
            elif state in _ACTIVE:
                connections = None
            answers[name] = DomainActivity(
                # A guest that is off (or the test driver's) reports no CPU time: it uses none.
                cpu_time_ns=int(stats.get("cpu.time", 0)),
                running=state in _RUNNING,
                connections=connections.open if connections is not None else None,
                recently_closed=connections.recently_closed if connections is not None else 0,
            )
        return answers

    def _usernet(self, domain: libvirt.virDomain, name: str) -> UsernetConnections | None:
        """The connections of the domain's user-mode networks; None if the monitor gave no listing.

        ``Unsupported`` if the host's driver has no QEMU monitor; ``HostUnreachable`` if the host went
        away. Any other refusal (the guest stopped meanwhile, its monitor busy) is an unknown: None.
        """
        try:
            with self._call(f"list the connections of domain '{name}'", Subject(domain=name)):
                text = libvirt_qemu.qemuMonitorCommand(domain, _USERNET, _HMP)
        except (Unsupported, HostUnreachable):
            raise
        except DriverError:
            return None
        listing = parse_usernet(str(text))
        if listing is None:
            logger.warning("host %s: domain %s: QEMU's monitor gave no connection listing", self.uri, name)
        return listing


__all__ = ["LibvirtStats", "UsernetConnections", "parse_usernet"]

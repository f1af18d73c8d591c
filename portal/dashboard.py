"""What the dashboard shows a signed-in user, gathered in a handful of queries however much there is.

Everything is narrowed with ``visible_to`` (see ``portal.scoping``): tenants see their projects'
stacks and events, operators see every project's and, besides, how the hosts are doing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from portal.models import Membership, Project, Role
from portal.scoping import Account, User, is_operator
from provisioning import quotas
from provisioning.models import ACTIVE_STATUSES, DELETABLE_STATUSES, Host, Stack, StackEvent
from provisioning.selectors import HostCapacity, host_capacity

# A lease that ends sooner than this gets its own warning, with a link to extend it.
ENDING_SOON = timedelta(hours=1)
# The dashboard is an overview: longer lists live on the stacks page.
ACTIVE_STACKS_SHOWN = 20
RECENT_EVENTS_SHOWN = 10
# Hosts are re-read every 2 minutes (the "refresh-hosts" schedule); a host not read for much longer
# than that means the workers are down or the host hangs on connect.
HOST_CHECK_OVERDUE = timedelta(minutes=10)


@dataclass(frozen=True)
class ProjectCard:
    """One project of the user: their role in it and what it holds against each quota."""

    project: Project
    role: Role | None  # None for an operator who is not a member
    can_manage_members: bool  # owners, and operators everywhere
    can_launch: bool  # members and owners, and operators everywhere
    lines: list[quotas.QuotaLine]
    longest_lease: str


@dataclass(frozen=True)
class Gauge:
    """How much of a host's capacity placement has handed out, drawn as a bar."""

    what: str
    used: int
    limit: int

    @property
    def percent(self) -> int:
        return quotas.percent_used(self.used, self.limit)


@dataclass(frozen=True)
class HostRow:
    name: str
    enabled: bool
    healthy: bool
    draining: bool
    instances: int
    gauges: list[Gauge]
    disk_used_gib: int
    disk_capacity_known: bool


@dataclass(frozen=True)
class FailingHost:
    host: Host
    problems: list[str]


@dataclass(frozen=True)
class OperatorPanel:
    hosts: list[HostRow]
    failing_hosts: list[FailingHost]


@dataclass(frozen=True)
class Dashboard:
    projects: list[ProjectCard]
    active_stacks: list[Stack]
    more_active_stacks: bool  # more than ACTIVE_STACKS_SHOWN are active: the page links to the full list
    ending_soon: list[Stack]
    recent_events: list[StackEvent]
    operator: OperatorPanel | None

    @property
    def has_projects(self) -> bool:
        return bool(self.projects)

    @property
    def can_launch(self) -> bool:
        """Whether the reader may launch anywhere: the dashboard then offers the launch dialog."""
        return any(card.can_launch for card in self.projects)


def dashboard_for(user: Account, *, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    stacks = _active_stacks(user)
    shown = stacks[:ACTIVE_STACKS_SHOWN]
    return Dashboard(
        projects=_project_cards(user),
        active_stacks=shown,
        more_active_stacks=len(stacks) > ACTIVE_STACKS_SHOWN,
        ending_soon=[
            stack for stack in shown if stack.status in DELETABLE_STATUSES and stack.expires_at <= now + ENDING_SOON
        ],
        recent_events=_recent_events(user),
        operator=_operator_panel(now) if is_operator(user) else None,
    )


def _project_cards(user: Account) -> list[ProjectCard]:
    """Every project the user sees, with their own role in it and its quota usage (two queries)."""
    # Their memberships, not Project.with_role: that counts operators as owners everywhere, and the
    # card should say what they really are.
    own_roles = dict(Membership.objects.filter(user=user).values_list("project_id", "role"))
    operator = is_operator(user)
    cards = []
    for entry in quotas.quota_overview(user):
        role_value = own_roles.get(entry.project.pk)
        role = Role(role_value) if role_value else None
        cards.append(
            ProjectCard(
                project=entry.project,
                role=role,
                can_manage_members=operator or role == Role.OWNER,
                can_launch=operator or (role is not None and role.rank >= Role.MEMBER.rank),
                lines=entry.lines,
                longest_lease=entry.longest_lease,
            )
        )
    return cards


def _active_stacks(user: User) -> list[Stack]:
    """Stacks that hold resources, soonest lease end first (so the ones ending soon lead the list).

    One more than is shown is read, to tell whether the list goes on.
    """
    active = Stack.objects.visible_to(user).filter(status__in=ACTIVE_STATUSES).select_related("project")
    return list(active.order_by("expires_at", "pk")[: ACTIVE_STACKS_SHOWN + 1])


def _recent_events(user: User) -> list[StackEvent]:
    events = StackEvent.objects.visible_to(user).select_related("stack__project", "actor")
    return list(events.order_by("-created_at", "-pk")[:RECENT_EVENTS_SHOWN])


def _operator_panel(now: datetime) -> OperatorPanel:
    return OperatorPanel(hosts=[_host_row(host) for host in host_capacity()], failing_hosts=failing_hosts(now))


def _host_row(host: HostCapacity) -> HostRow:
    gauges = [
        Gauge("vCPUs", host["vcpus_used"], host["vcpus_capacity"]),
        Gauge("MiB of memory", host["memory_used_mib"], host["memory_capacity_mib"]),
    ]
    disk_capacity = host["disk_capacity_gib"]
    if disk_capacity is not None:
        gauges.append(Gauge("GiB of disk", host["disk_used_gib"], disk_capacity))
    return HostRow(
        name=host["name"],
        enabled=host["enabled"],
        healthy=host["healthy"],
        draining=host["draining"],
        instances=host["instances"],
        gauges=gauges,
        disk_used_gib=host["disk_used_gib"],
        disk_capacity_known=disk_capacity is not None,
    )


def failing_hosts(now: datetime) -> list[FailingHost]:
    """Hosts that get no new stacks (disabled, unhealthy, draining) or were not read lately, each with why."""
    overdue = now - HOST_CHECK_OVERDUE
    # Disabled hosts are not re-read (refresh_hosts skips them), so only enabled ones can be overdue.
    unchecked = Q(enabled=True) & (Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=overdue))
    hosts = Host.objects.filter(Q(enabled=False) | Q(healthy=False) | Q(draining=True) | unchecked).order_by("name")
    return [FailingHost(host, _problems(host, overdue)) for host in hosts]


def _problems(host: Host, overdue: datetime) -> list[str]:
    problems = []
    if not host.enabled:
        problems.append("disabled")
    if host.maintenance:
        problems.append("in maintenance: its libvirtd may be stopped")
    elif not host.healthy:
        problems.append("unhealthy")
    if host.draining and not host.maintenance:
        problems.append("draining: takes no new stacks")
    if host.enabled and (host.last_checked_at is None or host.last_checked_at < overdue):
        problems.append("not checked recently")
    return problems

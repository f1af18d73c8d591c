"""Project quotas: what a project holds against each limit, and the check a launch must pass.

A project may hold at most ``max_stacks`` stacks and, summed over their instances,
``max_instances`` instances, ``max_vcpus`` vCPUs, ``max_memory_mib`` MiB of RAM and
``max_disk_gib`` GiB of disk; no stack of it may have a lease longer than ``max_lease_seconds``.
Stacks and instances count while their status is in ``ACTIVE_STATUSES``: a failed stack holds its
quota until it is deleted (or its lease runs out). vCPUs and memory count only in
``COMPUTE_STATUSES``: a shelved stack gives them back and keeps its disks. Snapshots count against
the disk quota by the space they take on the hosts.

The check judges a whole stack at once (every tier of a template) and runs inside the launch
transaction with the project row locked, so parallel launches of one project queue there and none
can pass a limit another has just used up.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from portal import errors
from portal.models import Project
from portal.moments import duration_text
from portal.scoping import User
from provisioning.demand import GIB, StackDemand
from provisioning.models import ACTIVE_STATUSES, COMPUTE_STATUSES, Instance, Stack, StackSnapshot


@dataclass(frozen=True)
class Quota:
    """One limit on what a project holds: its name in the API, the project field, how messages name it."""

    key: str
    field: str
    unit: str


# In the order the UI and the messages list them.
QUOTAS = (
    Quota("stacks", "max_stacks", "stacks"),
    Quota("instances", "max_instances", "instances"),
    Quota("vcpus", "max_vcpus", "vCPUs"),
    Quota("memory_mib", "max_memory_mib", "MiB of memory"),
    Quota("disk_gib", "max_disk_gib", "GiB of disk"),
)


def percent_used(used: int, limit: int) -> int:
    """How full a gauge is drawn: 0-100, and full when there is no room at all."""
    return min(100, round(100 * used / limit)) if limit else 100


@dataclass(frozen=True)
class QuotaLine:
    key: str
    what: str
    used: int
    limit: int

    @property
    def percent(self) -> int:
        return percent_used(self.used, self.limit)


def _summed(field: str, statuses: tuple[str, ...] = ACTIVE_STATUSES) -> Coalesce:
    """What the project's instances in ``statuses`` hold of ``field``, as a subquery per project row."""
    rows = (
        Instance.objects.filter(stack__project=OuterRef("pk"), status__in=statuses).order_by().values("stack__project")
    )
    total = Count("pk") if field == "pk" else Sum(field)
    return Coalesce(Subquery(rows.annotate(total=total).values("total")), Value(0), output_field=IntegerField())


def with_usage(projects: QuerySet[Project]) -> QuerySet[Project]:
    """``projects`` annotated with what each holds: ``used_stacks``, ``used_instances``, ``used_vcpus``,
    ``used_memory_mib`` and ``used_disk_gib`` (one query however many projects)."""
    stacks = (
        Stack.objects.filter(project=OuterRef("pk"), status__in=ACTIVE_STATUSES)
        .order_by()
        .values("project")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return projects.annotate(
        used_stacks=Coalesce(Subquery(stacks), Value(0), output_field=IntegerField()),
        used_instances=_summed("pk"),
        # A shelved instance gives its vCPUs and memory back and keeps its disk.
        used_vcpus=_summed("vcpus", COMPUTE_STATUSES),
        used_memory_mib=_summed("memory_mib", COMPUTE_STATUSES),
        used_disk_gib=_summed("disk_gib") + _snapshot_gib(),
    )


def _snapshot_gib() -> Coalesce:
    """The GiB (rounded up) the project's snapshots take on its hosts' pools, as a subquery per project row."""
    rows = (
        StackSnapshot.objects.filter(stack__project=OuterRef("pk"))
        .exclude(stack__status="deleted")
        .order_by()
        .values("stack__project")
        .annotate(total=(Sum("size_bytes") + GIB - 1) / GIB)
        .values("total")
    )
    return Coalesce(Subquery(rows), Value(0), output_field=IntegerField())


def usage_lines(project: Project) -> list[QuotaLine]:
    """The lines of a project annotated by ``with_usage``, in ``QUOTAS`` order."""
    return [
        QuotaLine(quota.key, quota.unit, getattr(project, f"used_{quota.key}"), getattr(project, quota.field))
        for quota in QUOTAS
    ]


def project_usage(project: Project) -> list[QuotaLine]:
    """What the project holds against each quota (one query)."""
    return usage_lines(with_usage(Project.objects.filter(pk=project.pk)).get())


@dataclass(frozen=True)
class ProjectQuotas:
    project: Project
    lines: list[QuotaLine]

    @property
    def longest_lease(self) -> str:
        return describe_seconds(self.project.max_lease_seconds)


def quota_overview(user: User) -> list[ProjectQuotas]:
    """Quota usage of every project the user sees, in one query for all of them."""
    return [ProjectQuotas(project, usage_lines(project)) for project in with_usage(Project.objects.visible_to(user))]


def describe_seconds(seconds: int) -> str:
    """``7 days``, ``4 hours``, ``1 hour 30 minutes``: the one way durations are written."""
    return duration_text(seconds)


def check_stack_quota(project: Project, demand: StackDemand) -> None:
    """Refuse (``QuotaExceeded``, naming every limit it passes) a stack that would take the project over quota.

    Call with the project row locked (``select_for_update``) inside the launch transaction.
    """
    wanted = {
        "stacks": 1,
        "instances": len(demand.instances),
        "vcpus": demand.vcpus,
        "memory_mib": demand.memory_mib,
        "disk_gib": demand.disk_gib,
    }
    lease = _lease_problem(project, demand.lease_seconds)
    _refuse_over(project, wanted, "this stack needs", extra=[lease] if lease else [])


def check_more_quota(project: Project, wanted: dict[str, int], *, what: str) -> None:
    """Refuse (``QuotaExceeded``) taking ``wanted`` more of some quotas (keys of ``QUOTAS``) for ``what``.

    ``what`` ends the sentence "... are in use and ``what`` needs N" ("unshelving it").
    Call with the project row locked, as ``check_stack_quota``.
    """
    _refuse_over(project, wanted, f"{what} needs")


def _refuse_over(project: Project, wanted: dict[str, int], needs: str, *, extra: list[str] | None = None) -> None:
    problems = [
        f"may hold {line.limit} {line.what}, {line.used} are in use and {needs} {wanted[line.key]}"
        for line in project_usage(project)
        if line.key in wanted and line.used + wanted[line.key] > line.limit
    ]
    problems.extend(extra or [])
    if problems:
        raise errors.QuotaExceeded(f"quota exceeded: project '{project.name}' " + "; it ".join(problems))


def _lease_problem(project: Project, lease_seconds: int) -> str | None:
    if lease_seconds <= project.max_lease_seconds:
        return None
    longest, asked = duration_text(project.max_lease_seconds), duration_text(lease_seconds)
    return f"allows leases of at most {longest} and this stack asks for {asked}"

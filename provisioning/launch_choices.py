"""What the launch dialog offers: the projects a launch may go to, the one it starts on, and the appliances.

A project is offered only when the launch could go there at all: the user is a member of it (or an
operator), and the appliance or template belongs to it (a project's own feed or template) or is
shared. The dialog starts on the project the reader came from, else the one they launched in last if
it has room, else the first with room: never just the first by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from catalog.image_problems import launch_block
from catalog.models import Appliance, ApplianceVersion
from catalog.selectors import appliance_versions_visible_to
from portal.models import Project, Role
from portal.scoping import Account, User
from provisioning.demand import StackDemand
from provisioning.launch_preview import fits_quota
from provisioning.models import Stack, StackTemplate
from provisioning.quotas import with_usage

# The picker lists at most this many appliances; the catalog pages through every one.
PICKER_LIMIT = 200


def member_projects(user: User) -> QuerySet[Project]:
    """Every project ``user`` may launch in, with what each holds (``with_usage``), by name."""
    return with_usage(Project.objects.visible_to(user, min_role=Role.MEMBER)).order_by("name", "pk")


def projects_for_version(user: User, version: ApplianceVersion | None) -> QuerySet[Project]:
    """The projects ``version`` may be launched in: its own feed's project, or all for a shared feed."""
    projects = member_projects(user)
    owner = version.appliance.feed.project_id if version is not None else None
    return projects.filter(pk=owner) if owner is not None else projects


def projects_for_template(user: User, template: StackTemplate) -> QuerySet[Project]:
    """The projects ``template`` may be launched in: its own project, or all for a shared template."""
    projects = member_projects(user)
    return projects.filter(pk=template.project_id) if template.project_id is not None else projects


def last_used_project_id(user: Account, projects: Sequence[Project]) -> int | None:
    """The project of the stack ``user`` launched last, among ``projects``."""
    ids = [project.pk for project in projects]
    latest = Stack.objects.filter(created_by=user, project_id__in=ids).order_by("-created_at", "-pk")
    return latest.values_list("project_id", flat=True).first()


def default_project(
    projects: Sequence[Project],
    *,
    came_from: int | None,
    last_used: int | None,
    demand: StackDemand | None,
) -> Project | None:
    """The project the dialog starts on (``projects`` annotated by ``with_usage``).

    The one the reader came from wins (they chose it, even if it is full: the dialog then says so);
    then the one they launched in last, if ``demand`` fits its quota; then the first that fits;
    then the last used, or the first. Without ``demand`` (no appliance chosen yet), room means room
    for one more stack.
    """
    by_id = {project.pk: project for project in projects}
    # Nothing chosen yet: room for a stack at all.
    demand = demand or StackDemand(instances=(), lease_seconds=0)
    if came_from in by_id:
        return by_id[came_from]
    if last_used in by_id and fits_quota(by_id[last_used], demand):
        return by_id[last_used]
    roomy = next((project for project in projects if fits_quota(project, demand)), None)
    if roomy is not None:
        return roomy
    return by_id.get(last_used) if last_used in by_id else next(iter(projects), None)


@dataclass(frozen=True)
class PickerGroup:
    label: str
    options: list[tuple[int, str]]


def version_label(version: ApplianceVersion) -> str:
    return f"{version.appliance.title} {version.version} ({version.min_vcpus} vCPU, {version.min_ram_mib} MiB)"


def appliance_picker(user: User, *, chosen: ApplianceVersion | None = None) -> tuple[list[PickerGroup], bool]:
    """Each appliance ``user`` may launch once, at its newest current version (or at ``chosen``, the
    version the reader picked), grouped by feed.

    Versions and feeds that carry the same appliance twice are what made a flat list of versions
    read as duplicates: one entry per appliance, under its feed's name, and an appliance whose title
    another of the same feed shares is told apart by its identifier. Withdrawn versions are not
    offered, nor an appliance whose image failed (``launch_block``). The second value says whether
    more appliances exist than are listed (``PICKER_LIMIT``).
    """
    launchable = Project.objects.visible_to(user, min_role=Role.MEMBER).values("pk")
    newest = (
        appliance_versions_visible_to(user)
        .filter(appliance=OuterRef("pk"), withdrawn=False)
        .newest_first()
        .values("pk")[:1]
    )
    rows = (
        Appliance.objects.visible_to(user)
        .filter(Q(feed__project__isnull=True) | Q(feed__project__in=launchable))
        .annotate(newest_pk=Subquery(newest))
        .filter(newest_pk__isnull=False)
        .select_related("feed", "feed__project")
        .order_by(F("feed__project__name").asc(nulls_first=True), "feed__title", "feed_id", "title", "identifier")
    )
    listed = list(rows[: PICKER_LIMIT + 1])
    more = len(listed) > PICKER_LIMIT
    listed = listed[:PICKER_LIMIT]
    newest_pks = [appliance.newest_pk for appliance in listed]  # type: ignore[attr-defined]
    versions = appliance_versions_visible_to(user).in_bulk(newest_pks)
    by_feed: dict[int, list[Appliance]] = {}
    for appliance in listed:
        by_feed.setdefault(appliance.feed_id, []).append(appliance)
    groups = []
    for appliances in by_feed.values():
        titles = [appliance.title for appliance in appliances]
        options = []
        for appliance in appliances:
            version = versions[appliance.newest_pk]  # type: ignore[attr-defined]
            if chosen is not None and chosen.appliance_id == appliance.pk:
                version = chosen
            elif launch_block(version) is not None:
                continue  # its image failed: the catalog says why and what to do instead
            label = version_label(version)
            if titles.count(appliance.title) > 1:
                label = f"{label} [{appliance.identifier}]"
            options.append((version.pk, label))
        if options:
            groups.append(PickerGroup(_feed_label(appliances[0]), options))
    return groups, more


def _feed_label(appliance: Appliance) -> str:
    feed = appliance.feed
    name = feed.title or feed.display_url or "Uploaded images"
    return f"{name} (shared)" if feed.project is None else f"{name} ({feed.project.name})"

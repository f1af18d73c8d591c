"""The catalog's entries: one per appliance, however many feeds offer a copy of it.

The same appliance subscribed through two feeds (a project's and the shared catalog, or two
mirrors) is two rows, but one thing to a reader: it is shown as one entry, with the feeds that offer
it inside. Copies are told by identifier and title together, so two feeds that merely reuse an
identifier for different things stay apart.

The page is cut over entries, not rows: a page of entries costs the same few queries however many
copies and versions lie behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet

from catalog.image_problems import LaunchBlock, launch_block
from catalog.models import Appliance, ApplianceQuerySet, ApplianceVersion

# Feeds named inside one entry; the rest are counted ("and 3 more feeds") and reached by a search.
MAX_SOURCES_SHOWN = 4


@dataclass
class ApplianceCopy:
    """One feed's copy of the appliance, with its newest version and why that cannot be launched, if so."""

    appliance: Appliance
    newest: ApplianceVersion | None
    block: LaunchBlock | None

    @property
    def launchable(self) -> bool:
        return self.newest is not None and self.block is None


@dataclass
class ApplianceGroup:
    title: str
    identifier: str
    copies: list[ApplianceCopy] = field(default_factory=list)
    copy_count: int = 0  # every copy the filters match, shown or not

    @property
    def primary(self) -> ApplianceCopy:
        """The copy the entry offers first: one that can be launched, the newest version first."""
        return self.copies[0]

    @property
    def others(self) -> list[ApplianceCopy]:
        return self.copies[1:MAX_SOURCES_SHOWN]

    @property
    def more(self) -> int:
        """Copies neither offered first nor named."""
        return max(0, self.copy_count - MAX_SOURCES_SHOWN)


def entry_rows(appliances: ApplianceQuerySet) -> QuerySet[Any, dict[str, Any]]:
    """One row per entry (title, identifier, copies), in the order the catalog shows them."""
    return (
        appliances.prefetch_related(None)
        .order_by()
        .values("title", "identifier")
        .annotate(copies=Count("pk", distinct=True))
        .order_by("title", "identifier")
    )


def _copy_order(copy: ApplianceCopy) -> tuple[bool, float, str, int]:
    published = copy.newest.published_at if copy.newest is not None else None
    return (
        not copy.launchable,
        -(published.timestamp() if published else 0.0),
        str(copy.appliance.feed),
        copy.appliance.pk,
    )


def entries_for(appliances: ApplianceQuerySet, rows: list[dict[str, Any]]) -> list[ApplianceGroup]:
    """The entries of one page (``rows`` from ``entry_rows``), filled from ``appliances`` (filters applied,
    ``newest_versions`` prefetched)."""
    groups = {
        (row["title"], row["identifier"]): ApplianceGroup(row["title"], row["identifier"], copy_count=row["copies"])
        for row in rows
    }
    if not groups:
        return []
    wanted = Q()
    for title, identifier in groups:
        wanted |= Q(title=title, identifier=identifier)
    for appliance in appliances.filter(wanted):
        newest = next(iter(appliance.newest_versions), None)  # type: ignore[attr-defined]
        block = launch_block(newest) if newest is not None else None
        groups[(appliance.title, appliance.identifier)].copies.append(ApplianceCopy(appliance, newest, block))
    for group in groups.values():
        group.copies.sort(key=_copy_order)
    return [group for group in groups.values() if group.copies]

"""Which disk a capture takes of each tier: the first live instance's, on its host.

Of a tier run as several instances, the first instance's disk is taken: the tier's count stays, and
every instance of a launch of the template starts from that disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.models import ApplianceVersion
from portal import errors
from provisioning.models import Instance, Stack, Status
from provisioning.templates import TemplateDocument, Tier

GIB = 1024**3


@dataclass(frozen=True)
class TierSource:
    """One tier to capture: the instance whose disk is taken."""

    tier: Tier
    instance: Instance

    @property
    def origin(self) -> ApplianceVersion:
        """The appliance version the tier was launched from (``tier_sources`` keeps only tiers that have one)."""
        version = self.instance.appliance_version
        assert version is not None
        return version

    def disk_bytes(self) -> int:
        if self.instance.disk_gib:
            return self.instance.disk_gib * GIB
        return self.origin.known_virtual_bytes or 0


def tier_sources(stack: Stack) -> list[TierSource]:
    """Every tier of ``stack`` in its document's order; a tier without a disk to copy is refused."""
    document = TemplateDocument.from_json(stack.document)
    live = stack.instances.exclude(status=Status.DELETED).select_related(
        "host", "appliance_version__image", "appliance_version__appliance", "appliance_version__delivery"
    )
    by_role: dict[str, Instance] = {}
    for instance in live.order_by("id"):
        by_role.setdefault(instance.role, instance)
    sources = []
    for tier in document.tiers:
        found = by_role.get(tier.name)
        if found is None or found.host is None:
            raise errors.WrongState(f"tier '{tier.name}' of the stack has no disk on a host to capture")
        if found.appliance_version is None:
            # Its disk is an overlay over that version's image: without it there is nothing to copy it with.
            raise errors.WrongState(f"the appliance tier '{tier.name}' was launched from is gone from the catalog")
        sources.append(TierSource(tier=tier, instance=found))
    return sources

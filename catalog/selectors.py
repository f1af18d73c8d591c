"""Reads from the catalog, always narrowed to what the caller may see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, Q, QuerySet

from catalog.models import (
    Appliance,
    ApplianceQuerySet,
    ApplianceVersion,
    ApplianceVersionQuerySet,
    CachedImage,
    Feed,
    FeedQuerySet,
)
from portal import errors
from portal.scoping import User

if TYPE_CHECKING:
    from provisioning.models import Stack


def feeds_visible_to(user: User) -> FeedQuerySet:
    return Feed.objects.visible_to(user).select_related("project")


def appliances_visible_to(user: User) -> ApplianceQuerySet:
    versions = ApplianceVersion.objects.select_related("image", "delivery").newest_first()
    return (
        Appliance.objects.visible_to(user)
        .select_related("feed", "feed__project")
        .prefetch_related(Prefetch("versions", queryset=versions))
    )


def appliance_versions_visible_to(user: User) -> ApplianceVersionQuerySet:
    return ApplianceVersion.objects.visible_to(user).select_related("appliance", "appliance__feed", "image", "delivery")


def appliance_version_for_launch(*, user: User, appliance: Appliance, version: str | None) -> ApplianceVersion:
    """The version of ``appliance`` a launch uses: the named one, or the newest when none is named."""
    versions = appliance_versions_visible_to(user).filter(appliance=appliance)
    found = versions.filter(version=version).first() if version else versions.newest_first().first()
    if found is not None:
        return found
    if not Appliance.objects.visible_to(user).filter(pk=appliance.pk).exists():
        # Answered like an unknown id in a request body, so another project's appliance title does not leak.
        raise errors.Invalid.for_field("appliance", "no such appliance")
    if version:
        raise errors.Invalid.for_field("version", f"appliance '{appliance}' has no such version")
    raise errors.Invalid.for_field("version", f"appliance '{appliance}' has no versions yet")


def cached_images_in_use() -> QuerySet[CachedImage]:
    """Cached images that must stay: a live instance needs them (its version's image, the instance in
    an active status), or a project's own catalog holds them (no URL could bring those back).

    Not a tenant's read: the image cache asks it before evicting anything. The instances are reached
    through the reverse relations by name, so the catalog imports no provisioning code but the status list.
    """
    from provisioning.models import ACTIVE_STATUSES  # provisioning's models import ours: look it up when asked

    return CachedImage.objects.filter(
        Q(versions__instances__status__in=ACTIVE_STATUSES) | Q(versions__appliance__feed__format=Feed.Format.LOCAL)
    ).distinct()


def live_stacks_using(feed: Feed) -> QuerySet[Stack]:
    """Stacks not deleted that one of ``feed``'s versions built (any project's: the feed may be shared).

    Not a tenant's read: removing a feed asks it, and is refused while there is any.
    """
    from provisioning.models import ACTIVE_STATUSES, Stack  # provisioning's models import ours

    return (
        Stack.objects.filter(instances__appliance_version__appliance__feed=feed, instances__status__in=ACTIVE_STATUSES)
        .select_related("project")
        .distinct()
        .order_by("name", "pk")
    )

"""Reads from the catalog, always narrowed to what the caller may see."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from catalog.models import Appliance, ApplianceVersion, Feed
from portal.scoping import User, scope_to_user


def feeds_visible_to(user: User) -> QuerySet[Feed]:
    return scope_to_user(Feed.objects.select_related("project"), user, include_shared=True)


def appliances_visible_to(user: User) -> QuerySet[Appliance]:
    versions = ApplianceVersion.objects.select_related("image").order_by("-published_at", "-id")
    return scope_to_user(
        Appliance.objects.select_related("feed", "feed__project").prefetch_related(
            Prefetch("versions", queryset=versions)
        ),
        user,
        project_field="feed__project",
        include_shared=True,
    )


def appliance_versions_visible_to(user: User) -> QuerySet[ApplianceVersion]:
    return scope_to_user(
        ApplianceVersion.objects.select_related("appliance", "appliance__feed", "image"),
        user,
        project_field="appliance__feed__project",
        include_shared=True,
    )

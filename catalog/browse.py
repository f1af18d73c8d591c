"""The catalog page's search and filters: free text, tier, size and feed, all narrowed to the reader.

The tier and feed lists offer a bounded number of choices (the most common tiers, the first feeds
by name): an operator sees every project's feeds, and a page must not grow with them. Any tier or
visible feed can still be asked for (the feed list links to each feed's appliances).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import Count, Prefetch, Q

from catalog.models import ApplianceQuerySet, ApplianceVersion, Feed
from catalog.selectors import appliances_visible_to, feeds_visible_to
from portal.scoping import User
from provisioning.name_rules import TIER_NAME

MAX_CHOICES = 50

# Sizes by the smallest RAM a version needs: the measure people pick a VM by.
SIZES = {
    "small": ("Small (up to 512 MiB)", Q(versions__min_ram_mib__lte=512)),
    "medium": ("Medium (up to 2 GiB)", Q(versions__min_ram_mib__gt=512, versions__min_ram_mib__lte=2048)),
    "large": ("Large (over 2 GiB)", Q(versions__min_ram_mib__gt=2048)),
}


class CatalogFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    role = forms.RegexField(
        regex=TIER_NAME.pattern, required=False, max_length=TIER_NAME.max_length, label="Tier", widget=forms.Select
    )
    size = forms.ChoiceField(
        required=False, label="Size", choices=[("", "Any size")] + [(key, label) for key, (label, _q) in SIZES.items()]
    )
    feed = forms.ModelChoiceField(queryset=Feed.objects.none(), required=False, label="Feed", empty_label="Any feed")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wanted = self.data.get("role", "") if self.is_bound else ""
        common = (
            appliances_visible_to(user)
            .exclude(role="")
            .values("role")
            .annotate(appliances=Count("pk"))
            .order_by("-appliances", "role")
            .values_list("role", flat=True)[:MAX_CHOICES]
        )
        # (A row stored before roles were checked may hold one that is no tier name: not offered.)
        roles = sorted(role for role in {*common, wanted} if TIER_NAME.pattern.fullmatch(role))
        self.fields["role"].widget.choices = [("", "Any tier")] + [(role, role) for role in roles]
        feed_field = cast(forms.ModelChoiceField, self.fields["feed"])
        feed_field.queryset = feeds_visible_to(user)  # what may be asked for
        offered = list(feeds_visible_to(user).order_by("title", "url")[:MAX_CHOICES])
        asked = self.data.get("feed", "") if self.is_bound else ""
        if asked.isdigit() and len(asked) < 19 and all(str(feed.pk) != asked for feed in offered):
            offered += list(feeds_visible_to(user).filter(pk=int(asked)))
        feed_field.widget.choices = [("", "Any feed")] + [(feed.pk, str(feed)) for feed in offered]
        for name, field in self.fields.items():
            css = "form-control" if name == "q" else "form-select"
            field.widget.attrs["class"] = css
        self.fields["q"].widget.attrs.update({"type": "search", "placeholder": "Name, identifier or description"})

    @property
    def active(self) -> bool:
        return self.is_valid() and any(self.cleaned_data.values())


def filtered_appliances(user: User, form: CatalogFilterForm) -> ApplianceQuerySet:
    """The appliances the filters ask for, each with only its newest version (``newest_versions``)."""
    newest = ApplianceVersion.objects.select_related("image", "delivery").newest_first()[:1]
    appliances = (
        appliances_visible_to(user)
        .prefetch_related(None)  # not every version of each: a card shows the newest
        .prefetch_related(Prefetch("versions", queryset=newest, to_attr="newest_versions"))
        .order_by("title", "pk")
    )
    if not form.is_valid():
        return appliances
    wanted = form.cleaned_data
    if wanted["q"]:
        text = wanted["q"]
        appliances = appliances.filter(
            Q(title__icontains=text) | Q(identifier__icontains=text) | Q(description__icontains=text)
        )
    if wanted["role"]:
        appliances = appliances.filter(role=wanted["role"])
    if wanted["feed"]:
        appliances = appliances.filter(feed=wanted["feed"])
    if wanted["size"]:
        appliances = appliances.filter(SIZES[wanted["size"]][1]).distinct()
    return appliances

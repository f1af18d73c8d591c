"""The catalog page's search and filters: free text, tier, size and feed, all narrowed to the reader."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import Q

from catalog.models import ApplianceQuerySet, Feed
from catalog.selectors import appliances_visible_to, feeds_visible_to
from portal.scoping import User

# Sizes by the smallest RAM a version needs: the measure people pick a VM by.
SIZES = {
    "small": ("Small (up to 512 MiB)", Q(versions__min_ram_mib__lte=512)),
    "medium": ("Medium (up to 2 GiB)", Q(versions__min_ram_mib__gt=512, versions__min_ram_mib__lte=2048)),
    "large": ("Large (over 2 GiB)", Q(versions__min_ram_mib__gt=2048)),
}


class CatalogFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    role = forms.ChoiceField(required=False, label="Tier")
    size = forms.ChoiceField(
        required=False, label="Size", choices=[("", "Any size")] + [(key, label) for key, (label, _q) in SIZES.items()]
    )
    feed = forms.ModelChoiceField(queryset=Feed.objects.none(), required=False, label="Feed", empty_label="Any feed")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        roles = appliances_visible_to(user).exclude(role="").order_by("role").values_list("role", flat=True).distinct()
        cast(forms.ChoiceField, self.fields["role"]).choices = [("", "Any tier")] + [(role, role) for role in roles]
        cast(forms.ModelChoiceField, self.fields["feed"]).queryset = feeds_visible_to(user)
        for name, field in self.fields.items():
            css = "form-control" if name == "q" else "form-select"
            field.widget.attrs["class"] = css
        self.fields["q"].widget.attrs.update({"type": "search", "placeholder": "Name, identifier or description"})

    @property
    def active(self) -> bool:
        return self.is_valid() and any(self.cleaned_data.values())


def filtered_appliances(user: User, form: CatalogFilterForm) -> ApplianceQuerySet:
    appliances = appliances_visible_to(user).order_by("title")
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

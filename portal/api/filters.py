"""Query filters of the API's lists, by id, that say nothing about objects the caller cannot see.

django-filter's default for a foreign key is a choice among *all* rows: ``?project=7`` answered
400 "not one of the available choices" when project 7 did not exist but an empty page when it
existed elsewhere, which told outsiders which ids exist, and no schema can list those choices.
An id filter takes any id in range and filters the caller's own rows by it.
"""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from catalog.models import Appliance, Feed
from provisioning.models import Stack, StackTemplate

# The database's id columns are 64-bit; a larger number cannot name anything.
MAX_ID = 2**63 - 1


class StrictFilterSet(filters.FilterSet):
    """A parameter given empty (``?status=``) is refused rather than read as "no filter": the schema's
    types and enums hold for every value sent, and a client that means no filter leaves it out."""

    def is_valid(self) -> bool:
        for name in self.filters:
            if name in self.data and self.data.get(name) == "":
                self.form.add_error(name, "give a value, or leave the parameter out")
        return super().is_valid()


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """Rows whose ``field_name`` (a foreign key's ``_id`` column) equals the given id."""

    field_class = forms.IntegerField

    def __init__(self, *, field_name: str, **kwargs: object) -> None:
        super().__init__(field_name=field_name, min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field({"type": "string", "minLength": 1, "pattern": "^[^\\u0000]*$"})
class TextFilter(filters.CharFilter):
    """Rows whose ``field_name`` equals the text (as sent: a name with spaces around matches nothing)."""

    def __init__(self, *, field_name: str, **kwargs: object) -> None:
        # Django's form field refuses NUL characters (400), which the schema's pattern states.
        super().__init__(field_name=field_name, strip=False, **kwargs)


class FeedFilter(StrictFilterSet):
    project = IdFilter(field_name="project_id")

    class Meta:
        model = Feed
        fields = ["project", "last_status"]


class ApplianceFilter(StrictFilterSet):
    feed = IdFilter(field_name="feed_id")
    role = TextFilter(field_name="role")

    class Meta:
        model = Appliance
        fields = ["feed", "role"]


class StackFilter(StrictFilterSet):
    project = IdFilter(field_name="project_id")

    class Meta:
        model = Stack
        fields = ["project", "status"]


class TemplateFilter(StrictFilterSet):
    project = IdFilter(field_name="project_id")
    name = TextFilter(field_name="name")

    class Meta:
        model = StackTemplate
        fields = ["project", "name"]

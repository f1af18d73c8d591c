"""Relation fields whose choices are limited to what the requesting user may see."""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet
from rest_framework import serializers


class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A primary key that only resolves inside ``scope(user)``: anything else is 'does not exist'."""

    def __init__(self, *, scope: Callable[..., QuerySet], **kwargs) -> None:
        self._scope = scope
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        return self._scope(self.context["request"].user)

"""``GET /api/v1/flavors/``: the sizes templates may name, with their quality of service (read-only:
operators define flavors in the admin)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from provisioning.api.serializers import FlavorSerializer
from provisioning.models import Flavor


@extend_schema_view(
    list=extend_schema(summary="List flavors (shared and your projects')"),
    retrieve=extend_schema(summary="Get a flavor and its limits"),
)
class FlavorViewSet(viewsets.ReadOnlyModelViewSet):
    """Shared flavors and those of the caller's projects; each limit is copied into an instance at launch."""

    serializer_class = FlavorSerializer

    def get_queryset(self) -> QuerySet[Flavor]:
        return Flavor.objects.visible_to(self.request.user)

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api.serializers import ApplianceSerializer, FeedCreateSerializer, FeedSerializer
from catalog.models import Appliance, Feed
from portal.api.filters import ApplianceFilter, FeedFilter


class FeedViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """VMcast subscriptions. Creating one queues its import; poll the feed for ``last_status``."""

    serializer_class = FeedSerializer
    filterset_class = FeedFilter

    def get_queryset(self) -> QuerySet[Feed]:
        return selectors.feeds_visible_to(self.request.user)

    @extend_schema(request=FeedCreateSerializer, responses={202: FeedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = FeedCreateSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        feed = services.feed_subscribe(
            user=request.user, url=given.validated_data["url"], project=given.validated_data.get("project")
        )
        return Response(FeedSerializer(feed).data, status=status.HTTP_202_ACCEPTED)


class ApplianceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ApplianceSerializer
    filterset_class = ApplianceFilter

    def get_queryset(self) -> QuerySet[Appliance]:
        return selectors.appliances_visible_to(self.request.user)

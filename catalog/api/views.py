from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api.serializers import ApplianceSerializer, FeedCreateSerializer, FeedSerializer


class FeedViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """VMcast subscriptions. Creating one queues its import; poll the feed for ``last_status``."""

    serializer_class = FeedSerializer
    filterset_fields = ["project", "last_status"]

    def get_queryset(self):
        return selectors.feeds_visible_to(self.request.user)

    @extend_schema(request=FeedCreateSerializer, responses={202: FeedSerializer})
    def create(self, request, *args, **kwargs):
        given = FeedCreateSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        feed = services.feed_subscribe(
            user=request.user, url=given.validated_data["url"], project=given.validated_data.get("project")
        )
        return Response(FeedSerializer(feed).data, status=status.HTTP_202_ACCEPTED)


class ApplianceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ApplianceSerializer
    filterset_fields = ["feed", "role"]

    def get_queryset(self):
        return selectors.appliances_visible_to(self.request.user)

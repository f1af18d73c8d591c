from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api.serializers import ApplianceSerializer, FeedCreateSerializer, FeedSerializer
from catalog.models import Appliance, Feed
from portal.api.filters import ApplianceFilter, FeedFilter


@extend_schema_view(
    list=extend_schema(summary="List feed subscriptions"),
    create=extend_schema(summary="Subscribe to a feed"),
    retrieve=extend_schema(summary="Get a feed"),
    destroy=extend_schema(summary="Unsubscribe from a feed"),
    refresh=extend_schema(summary="Import a feed again now"),
)
class FeedViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Feed subscriptions. Creating or refreshing one queues its import; poll the feed for ``last_status``.

    Removing one removes its appliances; it is refused while a live stack uses one of its versions.
    """

    serializer_class = FeedSerializer
    filterset_class = FeedFilter
    # A subscription or refresh past the project's import limit, a refresh of a feed being imported or
    # of the project's own catalog, and a removal while stacks use the feed answer 409.
    conflict_actions = ("create", "refresh", "destroy")

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

    @extend_schema(request=None, responses={202: FeedSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        """Import the feed again now (a server that says it is unchanged costs one request, nothing more).

        Refused for a project's own catalog, while the feed is being imported, and while its project
        has as many imports queued or running as it may.
        """
        feed = services.feed_refresh(user=request.user, feed=self.get_object())
        return Response(FeedSerializer(feed).data, status=status.HTTP_202_ACCEPTED)

    def perform_destroy(self, instance: Feed) -> None:
        services.feed_unsubscribe(user=self.request.user, feed=instance)


@extend_schema_view(
    list=extend_schema(summary="List appliances"),
    retrieve=extend_schema(summary="Get an appliance"),
)
class ApplianceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ApplianceSerializer
    filterset_class = ApplianceFilter

    def get_queryset(self) -> QuerySet[Appliance]:
        return selectors.appliances_visible_to(self.request.user)

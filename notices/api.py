"""The caller's notifications over the API: the list (newest first, paged, ``?unread=true``), and
marking one or all of them read. Another user's notification is missing (404), never forbidden."""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters  # type: ignore[import-untyped]
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from notices import selectors, services
from notices.models import Event, Notification
from portal.api.filters import StrictFilterSet


class NotificationStackSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="stack_ref")
    name = serializers.CharField(source="stack_name")


class NotificationProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="project_id")
    name = serializers.CharField(source="project.name")


class NotificationSerializer(serializers.ModelSerializer):
    event = serializers.ChoiceField(choices=Event.choices)
    stack = NotificationStackSerializer(source="*", help_text="The stack as it was named then (it may be gone)")
    project = NotificationProjectSerializer(source="*")
    moment = serializers.DateTimeField(allow_null=True, help_text="The lease end the notification speaks of")
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "event", "project", "stack", "moment", "created_at", "read_at", "read"]
        read_only_fields = fields

    def get_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications were unread and are now read")


class TrueOrFalseField(forms.ChoiceField):
    """``true`` or ``false``, as the schema's boolean is written in a query; anything else is refused."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=[("true", "true"), ("false", "false")], **kwargs)  # type: ignore[arg-type]


@extend_schema_field({"type": "boolean"})
class UnreadFilter(filters.Filter):
    field_class = TrueOrFalseField

    def filter(self, queryset, value):  # type: ignore[no-untyped-def]
        if value in (None, ""):
            return queryset
        return queryset.filter(read_at__isnull=value == "true")


class NotificationFilter(StrictFilterSet):
    unread = UnreadFilter(help_text="true: only unread ones; false: only read ones")

    class Meta:
        model = Notification
        fields = ["unread"]


@extend_schema_view(
    list=extend_schema(summary="List your notifications"),
    read=extend_schema(summary="Mark a notification read"),
    read_all=extend_schema(summary="Mark every notification read"),
)
class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's own notifications, newest first."""

    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Notification.objects.none()
        return selectors.notifications_of(self.request.user)

    @extend_schema(request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def read(self, request: Request, pk: str | None = None) -> Response:
        """Mark one notification read (it stays in the list)."""
        notification = services.notification_mark_read(user=request.user, notification=self.get_object())
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses={200: MarkedSerializer})
    @action(detail=False, methods=["post"], url_path="read-all", filterset_class=None, pagination_class=None)
    def read_all(self, request: Request) -> Response:
        """Mark every unread notification of the caller read."""
        return Response({"marked": services.notifications_mark_all_read(user=request.user)})

"""``GET /api/v1/operations/`` and ``/operations/{id}/``: moves, evacuations and resizes, with their
progress and outcome. Members see their projects' operations; a host's evacuation, operators only."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from portal.api.filters import IdFilter, StrictFilterSet
from portal.scoping import is_operator
from provisioning.models import Operation


class OperationSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:operation-detail")
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)
    host = serializers.CharField(
        source="host.name", read_only=True, default=None, allow_null=True, help_text="The host it moves away from"
    )
    target_host = serializers.CharField(
        source="target_host.name",
        read_only=True,
        default=None,
        allow_null=True,
        help_text="The host it moves to, once known",
    )
    finished = serializers.BooleanField(read_only=True, help_text="It has reached a final state")

    class Meta:
        model = Operation
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "finished",
            "progress_percent",
            "detail",
            "result",
            "request",
            "project",
            "stack",
            "instance",
            "host",
            "target_host",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class OperationFilter(StrictFilterSet):
    """By kind, state, and the ids of what an operation acts on (an unknown id matches nothing)."""

    stack = IdFilter(field_name="stack_id", help_text="A stack's id")
    instance = IdFilter(field_name="instance_id", help_text="An instance's id")
    host = IdFilter(field_name="host_id", help_text="The id of the host it moves away from")

    class Meta:
        model = Operation
        fields = ["kind", "status"]


@extend_schema_view(
    list=extend_schema(summary="List operations (moves, evacuations, resizes)"),
    retrieve=extend_schema(summary="Get an operation and its progress"),
)
class OperationViewSet(viewsets.ReadOnlyModelViewSet):
    """What a 202 from migrate, evacuate or resize points at: poll it until ``finished``."""

    serializer_class = OperationSerializer
    filterset_class = OperationFilter

    def get_queryset(self) -> QuerySet[Operation]:
        user = self.request.user
        # A host's evacuation belongs to no project: only operators, who see every operation, see it.
        rows = Operation.objects.all() if is_operator(user) else Operation.objects.visible_to(user)
        return rows.select_related("created_by", "host", "target_host")

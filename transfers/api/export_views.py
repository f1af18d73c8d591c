"""The API of exports.

- ``POST /instances/{id}/export/`` ``{"format": "qcow2" | "raw"}``: 202 with the export of that disk;
- ``POST /stacks/{id}/export/``: 202 with the export of the whole stack as an OVA;
- ``GET /exports/`` and ``GET /exports/{id}/``: the caller's projects' exports with their progress
  and, once ready, a ``download_url`` that works without signing in until ``expires_at``;
- ``DELETE /exports/{id}/``: remove a finished export and its file (its quota is free at once).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from provisioning.models import Instance, Stack
from transfers import exports
from transfers.api.export_serializers import ExportFilter, ExportSerializer, InstanceExportSerializer
from transfers.export_selectors import export_of, exports_visible_to
from transfers.models import Export


@extend_schema_view(
    post=extend_schema(summary="Export an instance's disk"),
)
class InstanceExportView(generics.GenericAPIView):
    """Export one instance's disk as a self-contained image."""

    serializer_class = ExportSerializer
    queryset = Instance.objects.none()  # the model, for the schema's path parameter
    # Named as a viewset's action is, so the schema lists the 409 of a busy stack or a full export limit.
    action = "export"
    conflict_actions = ("export",)

    @extend_schema(request=InstanceExportSerializer, responses={202: ExportSerializer})
    def post(self, request: Request, pk: int) -> Response:
        instance = Instance.objects.select_related("stack__project").get_visible(request.user, pk=pk)  # others: 404
        given = InstanceExportSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        made = exports.export_instance(user=request.user, instance=instance, fmt=given.validated_data["format"])
        return _accepted(request, made)


@extend_schema_view(
    post=extend_schema(summary="Export a stack as an OVA"),
)
class StackExportView(generics.GenericAPIView):
    """Export every tier of a stack as one OVA."""

    serializer_class = ExportSerializer
    queryset = Stack.objects.none()
    action = "export"
    conflict_actions = ("export",)

    @extend_schema(request=None, responses={202: ExportSerializer})
    def post(self, request: Request, pk: int) -> Response:
        stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)  # others: 404
        return _accepted(request, exports.export_stack(user=request.user, stack=stack))


def _accepted(request: Request, made: Export) -> Response:
    export = export_of(request.user, made.pk)
    return Response(ExportSerializer(export, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    get=extend_schema(summary="List exports"),
)
class ExportListView(generics.ListAPIView):
    """The exports of the caller's projects (where they are a member), newest first."""

    serializer_class = ExportSerializer
    filterset_class = ExportFilter

    def get_queryset(self) -> QuerySet[Export]:
        if getattr(self, "swagger_fake_view", False):
            return Export.objects.none()
        return exports_visible_to(self.request.user).order_by("-created_at", "-id")


@extend_schema_view(
    get=extend_schema(summary="Get an export"),
    delete=extend_schema(summary="Delete an export"),
)
class ExportDetailView(mixins.DestroyModelMixin, generics.RetrieveAPIView):
    """One export: its status, progress, checksum and download URL."""

    serializer_class = ExportSerializer
    queryset = Export.objects.none()
    action = "destroy"
    conflict_actions = ("destroy",)  # an export under way is not removed

    def get_object(self) -> Export:
        return export_of(self.request.user, self.kwargs["pk"])

    def delete(self, request: Request, pk: int) -> Response:
        """Remove a finished export and its file; one under way is refused (409)."""
        exports.export_delete(user=request.user, export=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

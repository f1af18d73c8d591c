"""The API of captures and of a project's VMcast token.

- ``POST /stacks/{id}/capture/`` ``{"appliance_prefix", "version"}``: 202 with the capture job;
- ``GET /captures/`` and ``GET /captures/{id}/``: the caller's projects' captures, with progress;
- ``POST /projects/{id}/vmcast/rotate/``: make or replace the project's VMcast token (owners); the
  answer and the project (``vmcast_url``, for members and owners) carry the new URL; the old one is
  dead at once. ``DELETE /projects/{id}/vmcast/`` revokes it without a new one.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from portal.models import Project
from provisioning.models import Stack
from transfers.api.capture_serializers import CaptureCreateSerializer, CaptureSerializer, VmcastSerializer
from transfers.capture import capture_create, capture_get, captures_visible_to
from transfers.models import Capture
from transfers.vmcast_producer import vmcast_revoke, vmcast_rotate, vmcast_url


@extend_schema_view(
    post=extend_schema(summary="Capture a stack's disks as new appliance versions"),
)
class StackCaptureView(generics.GenericAPIView):
    """Capture a stack: its tiers' disks become versions of the project's own catalog, plus a template."""

    serializer_class = CaptureSerializer
    queryset = Stack.objects.none()  # the model, for the schema's path parameter
    # Named as a viewset's action is, so the schema lists the 409 of a stack busy or not capturable.
    action = "capture"
    conflict_actions = ("capture",)

    @extend_schema(request=CaptureCreateSerializer, responses={202: CaptureSerializer})
    def post(self, request: Request, pk: int) -> Response:
        stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)  # others: 404
        given = CaptureCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        made = capture_create(user=request.user, stack=stack, **given.validated_data)
        return Response(CaptureSerializer(capture_get(user=request.user, capture_id=made.pk)).data, status=202)


@extend_schema_view(
    get=extend_schema(summary="List captures"),
)
class CaptureListView(generics.ListAPIView):
    """The captures of the caller's projects, newest first."""

    serializer_class = CaptureSerializer

    def get_queryset(self) -> QuerySet[Capture]:
        if getattr(self, "swagger_fake_view", False):
            return Capture.objects.none()
        return captures_visible_to(self.request.user).order_by("-created_at", "-id")


@extend_schema_view(
    get=extend_schema(summary="Get a capture"),
)
class CaptureDetailView(generics.RetrieveAPIView):
    """One capture: its status (pending, running, ready, failed), progress, error and template."""

    serializer_class = CaptureSerializer

    def get_queryset(self) -> QuerySet[Capture]:
        if getattr(self, "swagger_fake_view", False):
            return Capture.objects.none()
        return captures_visible_to(self.request.user)


@extend_schema_view(
    post=extend_schema(summary="Make or replace a project's VMcast token"),
)
class VmcastRotateView(generics.GenericAPIView):
    """Make the project's VMcast token, or replace it (every URL given out before stops working)."""

    serializer_class = VmcastSerializer
    queryset = Project.objects.none()

    @extend_schema(request=None, responses={200: VmcastSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = Project.objects.get_visible(request.user, pk=pk)  # outsiders: 404; members, viewers: 403
        project = vmcast_rotate(user=request.user, project=project)
        return Response(VmcastSerializer({"vmcast_url": vmcast_url(project)}).data)


@extend_schema_view(
    delete=extend_schema(summary="Revoke a project's VMcast feed"),
)
class VmcastView(generics.GenericAPIView):
    """Revoke the project's VMcast: its URLs answer 404 until an owner makes a new one."""

    serializer_class = VmcastSerializer
    queryset = Project.objects.none()
    http_method_names = ["delete", "options"]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        project = Project.objects.get_visible(request.user, pk=pk)
        vmcast_revoke(user=request.user, project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)

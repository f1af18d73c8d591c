"""``POST /api/v1/stacks/{id}/resize/``: new vCPUs, memory or disk for every instance of one tier.

Members and owners may resize (viewers: 403); to anyone outside the project the stack does not exist
(404). The answer is 202 with the operation (``GET /api/v1/operations/{id}/``); once it is finished its
``result`` says whether everything applied ``live`` or some of it ``at_restart``, per instance.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.validation import StrictRequestSerializer
from provisioning.api.operations import OperationSerializer
from provisioning.drivers.xml_values import MAX_VCPUS
from provisioning.models import Operation, Stack
from provisioning.services.resize import MAX_DISK_GIB, MAX_MEMORY_MIB, stack_resize


class ResizeSerializer(StrictRequestSerializer):
    tier = serializers.CharField(max_length=30, help_text="The tier whose instances are resized (all of them)")
    vcpus = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_VCPUS,
        help_text="vCPUs of each instance; live up to the domain's room for more, else at the next restart",
    )
    memory_mib = serializers.IntegerField(
        required=False,
        min_value=16,
        max_value=MAX_MEMORY_MIB,
        help_text="Memory of each instance; less applies live when the guest's balloon honours it, "
        "more at the next restart",
    )
    disk_gib = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DISK_GIB,
        help_text="Disk of each instance; disks only grow (live while the guest runs)",
    )


@extend_schema_view(post=extend_schema(summary="Resize a stack's tier (vCPUs, memory, disk)"))
class StackResizeView(generics.GenericAPIView):
    """Resize every instance of a tier, within the project's quota and its host's room."""

    serializer_class = OperationSerializer
    queryset = Stack.objects.none()  # the model, for the schema's path parameter
    # Named as a viewset's action is, so the schema lists the 409 of a busy stack or a full host.
    action = "resize"
    conflict_actions = ("resize",)

    @extend_schema(request=ResizeSerializer, responses={202: OperationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)  # others: 404
        given = ResizeSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        operation = stack_resize(user=request.user, stack=stack, **given.validated_data)
        shown = Operation.objects.select_related("created_by", "host", "target_host").get(pk=operation.pk)
        return Response(OperationSerializer(shown, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

"""``POST /api/v1/hosts/{id}/evacuate/`` and ``/hosts/{id}/maintenance/`` (operators only).

Both answer 202 with the operation (``GET /api/v1/operations/{id}/``) whose progress and outcome the
job writes: the stacks it moved (``result.moved``: stack, name, the host it went to, the stack's own
move operation) and those it could not, with why (``result.left``: stack, name, status, reason).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning.api.operations import OperationSerializer
from provisioning.models import Host, Operation
from provisioning.services.evacuation import begin_evacuation
from provisioning.services.maintenance import begin_maintenance


def _accepted(request: Request, operation: Operation) -> Response:
    return Response(OperationSerializer(operation, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class HostEvacuateView(APIView):
    permission_classes = [permissions.IsAdminUser]
    action = "evacuate"
    conflict_actions = ("evacuate",)  # the schema's 409: not draining, in maintenance, being evacuated

    @extend_schema(
        summary="Evacuate a draining host: move its running stacks live to other hosts",
        description=(
            "The host must be draining already (drain it first: `POST /api/v1/hosts/{id}/drain/`); a host that "
            "is not, one in maintenance, or one being evacuated is refused with 409. Each running stack on it "
            "moves live in turn to the host placement chooses; stopped, shelved, busy or errored stacks, and "
            "any that find no room or whose move fails (it keeps running here), are listed in `result.left` "
            "with the reason. The final status is `succeeded` (nothing left), `partial` or `failed` (nothing moved)."
        ),
        request=None,
        responses={202: OperationSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        host = get_object_or_404(Host, pk=pk)
        return _accepted(request, begin_evacuation(user=request.user, host=host))


class HostMaintenanceView(APIView):
    permission_classes = [permissions.IsAdminUser]
    action = "maintenance"
    conflict_actions = ("maintenance",)  # the schema's 409: in maintenance already, being evacuated

    @extend_schema(
        summary="Put a host in maintenance: drain, evacuate, then mark it so its libvirtd may stop",
        description=(
            "Drains the host (if it is not draining yet) and evacuates it as `evacuate` does; once no running "
            "stack is left on it, the host is marked `maintenance` (with `maintenance_since`). Then its libvirtd "
            "may be stopped: health checks and the reconciler do not count that as a failure. If a running "
            "stack could not move, the host stays draining and not in maintenance; the operation says why. "
            "`POST /api/v1/hosts/{id}/undrain/` ends maintenance and reads the host again."
        ),
        request=None,
        responses={202: OperationSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        host = get_object_or_404(Host, pk=pk)
        return _accepted(request, begin_maintenance(user=request.user, host=host))

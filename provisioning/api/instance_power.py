"""``POST /api/v1/instances/{id}/start|shutdown|poweroff|reboot/``: power for one tier of a stack.

The job runs on the instance's stack (which is busy meanwhile, as for a whole-stack action) and
answers with the stack, whose status settles at ``stopped`` once every tier is off.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from provisioning import selectors
from provisioning.api.serializers import StackSerializer
from provisioning.services import power

POWER_ACTIONS = ("start", "shutdown", "poweroff", "reboot")


class InstancePowerActions:
    """Mixed into the instances' viewset (which supplies ``get_object``, scoped to the caller's projects)."""

    def _power(self, request: Request, action_name: str) -> Response:
        instance = self.get_object()  # type: ignore[attr-defined]
        stack = power.stack_power(user=request.user, stack=instance.stack, action=action_name, instance=instance)
        body = StackSerializer(selectors.stack_visible_to(request.user, stack_id=stack.pk)).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Start this tier."""
        return self._power(request, "start")

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def shutdown(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Shut this tier down (ACPI; forced after a timeout)."""
        return self._power(request, "shutdown")

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def poweroff(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Cut this tier's power."""
        return self._power(request, "poweroff")

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def reboot(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Shut this tier down and start it again."""
        return self._power(request, "reboot")

"""``POST /api/v1/stacks/{id}/migrate/`` and ``/instances/{id}/migrate/``: move a running stack to another
host, live (operators only).

A stack's tiers share one private network on one host, so moving an instance moves its whole stack; the
operation says so. Members of the stack's project are refused (403); to anyone outside it the stack does
not exist (404). The answer is 202 with the operation (``GET /api/v1/operations/{id}/``); once it
succeeded, its ``result`` lists the stack's new ``endpoints`` and the instances that ``moved``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.validation import StrictRequestSerializer
from provisioning.api.operations import OperationSerializer
from provisioning.models import Host, Instance, Operation, Stack
from provisioning.services.migration import begin_stack_migration


@extend_schema_field({"oneOf": [{"type": "string", "maxLength": 100}, {"type": "integer", "minimum": 1}]})
class HostReferenceField(serializers.Field):
    """A host named by its name or its id."""

    default_error_messages = {"invalid": "Give a host's name or its id.", "unknown": "No such host."}

    def to_internal_value(self, data: Any) -> Host:
        if isinstance(data, bool) or not isinstance(data, int | str) or (isinstance(data, str) and len(data) > 100):
            self.fail("invalid")
        lookup = {"pk": data} if isinstance(data, int) else {"name": data}
        host = Host.objects.filter(**lookup).first()
        if host is None:
            self.fail("unknown")
        return host

    def to_representation(self, value: Host) -> str:
        return value.name


class MigrateSerializer(StrictRequestSerializer):
    host = HostReferenceField(
        required=False, help_text="The host to move to, by name or id; left out, placement chooses one with room"
    )


class _MigrateView(generics.GenericAPIView):
    serializer_class = OperationSerializer
    # Named as a viewset's action is, so the schema lists the 409 of a busy stack or a full host.
    action = "migrate"
    conflict_actions = ("migrate",)

    def _begin(self, request: Request, stack: Stack, instance: Instance | None = None) -> Response:
        given = MigrateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        target = given.validated_data.get("host")
        operation = begin_stack_migration(user=request.user, stack=stack, target=target, instance=instance)
        shown = Operation.objects.select_related("created_by", "host", "target_host").get(pk=operation.pk)
        return Response(OperationSerializer(shown, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(post=extend_schema(summary="Move a running stack to another host, live"))
class StackMigrateView(_MigrateView):
    """Move every tier of the stack, and its network, to another host while it runs (operators only)."""

    queryset = Stack.objects.none()  # the model, for the schema's path parameter

    @extend_schema(request=MigrateSerializer, responses={202: OperationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)  # others: 404
        return self._begin(request, stack)


@extend_schema_view(post=extend_schema(summary="Move a running instance (with its whole stack) to another host"))
class InstanceMigrateView(_MigrateView):
    """Move the instance live; its stack's other tiers move with it (they share its host's network)."""

    queryset = Instance.objects.none()

    @extend_schema(request=MigrateSerializer, responses={202: OperationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        instance = Instance.objects.select_related("stack__project").get_visible(request.user, pk=pk)
        return self._begin(request, instance.stack, instance)

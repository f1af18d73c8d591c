from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from portal import errors
from portal.api.filters import StackFilter
from provisioning import selectors
from provisioning.api.serializers import (
    LeaseSerializer,
    ScheduleSerializer,
    ShelveSerializer,
    SnapshotCreateSerializer,
    SnapshotSerializer,
    StackCreateSerializer,
    StackSerializer,
)
from provisioning.api.stack_events import StackEventsMixin
from provisioning.models import StackSnapshot
from provisioning.services import launch, lifecycle, power, schedules, shelving, snapshots

SNAPSHOT_ID = r"snapshots/(?P<snapshot_id>[0-9]+)"


@extend_schema_view(
    list=extend_schema(summary="List stacks"),
    create=extend_schema(summary="Launch a stack"),
    retrieve=extend_schema(summary="Get a stack"),
    destroy=extend_schema(summary="Delete a stack"),
    events=extend_schema(summary="List a stack's events"),
    extend=extend_schema(summary="Extend a stack's lease as far as allowed"),
    lease=extend_schema(summary="Renew a stack's lease"),
    start=extend_schema(summary="Start a stack"),
    shutdown=extend_schema(summary="Shut a stack down"),
    poweroff=extend_schema(summary="Power a stack off"),
    reboot=extend_schema(summary="Reboot a stack"),
    shelve=extend_schema(summary="Shelve a stack"),
    unshelve=extend_schema(summary="Unshelve a stack"),
    schedule=[
        extend_schema(methods=["PUT"], summary="Set a stack's weekly schedule"),
        extend_schema(methods=["DELETE"], summary="Remove a stack's schedule"),
    ],
    snapshots=[
        extend_schema(methods=["GET"], summary="List a stack's snapshots"),
        extend_schema(methods=["POST"], summary="Take a snapshot of a stack"),
    ],
    snapshot_delete=extend_schema(summary="Delete a snapshot"),
    snapshot_revert=extend_schema(summary="Revert a stack to a snapshot"),
)
class StackViewSet(StackEventsMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Stacks of the caller's projects. Create and delete answer at once; the work runs in the background."""

    serializer_class = StackSerializer
    filterset_class = StackFilter
    # No host with room; a stack not in a state for the action.
    conflict_actions = (
        "create",
        "destroy",
        "lease",
        "extend",
        "start",
        "shutdown",
        "poweroff",
        "reboot",
        "shelve",
        "unshelve",
        "snapshots",
        "snapshot_revert",
        "snapshot_delete",
        "schedule",
    )

    def get_queryset(self):
        return selectors.stacks_visible_to(self.request.user)

    def _answer(self, stack_id: int, code: int = status.HTTP_200_OK) -> Response:
        return Response(StackSerializer(self.get_queryset().get(pk=stack_id)).data, status=code)

    @extend_schema(request=StackCreateSerializer, responses={202: StackSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        given = StackCreateSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        data = given.validated_data
        if "template" in data:
            stack = launch.stack_launch_template(
                user=request.user,
                project=data["project"],
                name=data["name"],
                template=data["template"],
                lease_seconds=data.get("lease"),
            )
        else:
            stack = launch.stack_launch(
                user=request.user,
                project=data["project"],
                name=data["name"],
                appliance_version=data["appliance_version"],
                lease_seconds=data.get("lease"),
            )
        return self._answer(stack.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(responses={202: StackSerializer})
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        stack = lifecycle.stack_destroy(user=request.user, stack=self.get_object())
        return self._answer(stack.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(request=LeaseSerializer, responses={200: StackSerializer})
    @action(detail=True, methods=["post"])
    def lease(self, request: Request, pk: str | None = None) -> Response:
        """Renew the lease: the stack is destroyed ``lease`` seconds from now."""
        given = LeaseSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        stack = lifecycle.stack_renew_lease(
            user=request.user,
            stack=self.get_object(),
            lease_seconds=given.validated_data["lease"],
            shorten=given.validated_data["shorten"],
        )
        return self._answer(stack.pk)

    @extend_schema(request=None, responses={200: StackSerializer})
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, pk: str | None = None) -> Response:
        """Extend the lease as far as the project's policy allows, counted from now (never shortens)."""
        stack = lifecycle.stack_extend(user=request.user, stack=self.get_object())
        return self._answer(stack.pk)

    def _power(self, request: Request, action_name: str) -> Response:
        stack = power.stack_power(user=request.user, stack=self.get_object(), action=action_name)
        return self._answer(stack.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Start a stopped stack, tier after tier in dependency order."""
        return self._power(request, "start")

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def shutdown(self, request: Request, pk: str | None = None) -> Response:
        """Shut the stack down (ACPI, in reverse dependency order; forced after a timeout). Disks and lease stay."""
        return self._power(request, "shutdown")

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def poweroff(self, request: Request, pk: str | None = None) -> Response:
        """Cut every tier's power at once, in reverse dependency order."""
        return self._power(request, "poweroff")

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def reboot(self, request: Request, pk: str | None = None) -> Response:
        """Shut the stack down and start it again, in dependency order."""
        return self._power(request, "reboot")

    @extend_schema(request=ShelveSerializer, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def shelve(self, request: Request, pk: str | None = None) -> Response:
        """Set the stack aside: its vCPUs and memory are given back, its disks kept (storage lease)."""
        given = ShelveSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        stack = shelving.stack_shelve(user=request.user, stack=self.get_object(), memory=given.validated_data["memory"])
        return self._answer(stack.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"])
    def unshelve(self, request: Request, pk: str | None = None) -> Response:
        """Bring a shelved stack back: its vCPUs and memory are claimed again and its tiers started."""
        stack = shelving.stack_unshelve(user=request.user, stack=self.get_object())
        return self._answer(stack.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["get"], request=None, responses={200: SnapshotSerializer(many=True)})
    @extend_schema(methods=["post"], request=SnapshotCreateSerializer, responses={202: SnapshotSerializer})
    @action(detail=True, methods=["get", "post"])
    def snapshots(self, request: Request, pk: str | None = None) -> Response:
        """The stack's snapshots (newest first); POST takes a new one of every tier at one moment."""
        stack = self.get_object()
        if request.method == "GET":
            rows = StackSnapshot.objects.filter(stack=stack).select_related("created_by")
            page = self.paginate_queryset(rows)
            return self.get_paginated_response(SnapshotSerializer(page, many=True).data)
        given = SnapshotCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        made = snapshots.snapshot_create(user=request.user, stack=stack, **given.validated_data)
        made.refresh_from_db()
        return Response(SnapshotSerializer(made).data, status=status.HTTP_202_ACCEPTED)

    def _snapshot(self, snapshot_id: str) -> tuple:
        stack = self.get_object()
        return stack, get_object_or_404(StackSnapshot, pk=snapshot_id, stack=stack)

    @extend_schema(request=None, responses={202: StackSerializer})
    @action(detail=True, methods=["post"], url_path=rf"{SNAPSHOT_ID}/revert")
    def snapshot_revert(self, request: Request, pk: str | None = None, snapshot_id: str = "") -> Response:
        """Put every tier back as it was in the snapshot (records included)."""
        stack, snapshot = self._snapshot(snapshot_id)
        stack = snapshots.snapshot_revert(user=request.user, stack=stack, snapshot=snapshot)
        return self._answer(stack.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: SnapshotSerializer})
    @action(detail=True, methods=["delete"], url_path=SNAPSHOT_ID)
    def snapshot_delete(self, request: Request, pk: str | None = None, snapshot_id: str = "") -> Response:
        """Delete the snapshot from every tier."""
        stack, snapshot = self._snapshot(snapshot_id)
        row = snapshots.snapshot_delete(user=request.user, stack=stack, snapshot=snapshot)
        return Response(SnapshotSerializer(row).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["put"], request=ScheduleSerializer, responses={200: StackSerializer})
    @extend_schema(methods=["delete"], request=None, responses={200: StackSerializer})
    @action(detail=True, methods=["put", "delete"])
    def schedule(self, request: Request, pk: str | None = None) -> Response:
        """PUT sets the stack's weekly schedule (shelved when it says down, unshelved when it says up);
        DELETE removes it."""
        document = None
        if request.method == "PUT":
            document = request.data
            if not isinstance(document, dict) or not document:
                raise errors.Invalid.for_field("schedule", "a schedule is an object with 'time_zone' and 'windows'")
        stack = schedules.stack_schedule_set(user=request.user, stack=self.get_object(), document=document)
        return self._answer(stack.pk)

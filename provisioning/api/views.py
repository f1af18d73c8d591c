from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api.base import ServiceError
from provisioning import hosts, selectors, services
from provisioning.api.serializers import HostSerializer, LeaseSerializer, StackCreateSerializer, StackSerializer
from provisioning.models import Host

_LAUNCH_STATUS = {"invalid": 400, "quota_exceeded": 403, "no_capacity": 409}


class StackViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Stacks of the caller's projects. Create and delete answer at once; the work runs in the background."""

    serializer_class = StackSerializer
    filterset_fields = ["project", "status"]

    def get_queryset(self):
        return selectors.stacks_visible_to(self.request.user)

    @extend_schema(request=StackCreateSerializer, responses={202: StackSerializer})
    def create(self, request, *args, **kwargs):
        given = StackCreateSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            stack = services.stack_launch(
                user=request.user,
                project=data["project"],
                name=data["name"],
                appliance_version=data["appliance_version"],
                lease_seconds=data.get("lease"),
            )
        except services.LaunchError as exc:
            raise ServiceError(str(exc), code=exc.code, status_code=_LAUNCH_STATUS[exc.code]) from None
        return Response(StackSerializer(self.get_queryset().get(pk=stack.pk)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={202: StackSerializer})
    def destroy(self, request, *args, **kwargs):
        try:
            stack = services.stack_destroy(user=request.user, stack=self.get_object())
        except services.StackStateError as exc:
            raise ServiceError(str(exc), code="invalid_state", status_code=409) from None
        return Response(StackSerializer(self.get_queryset().get(pk=stack.pk)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=LeaseSerializer, responses={200: StackSerializer})
    @action(detail=True, methods=["post"])
    def lease(self, request, pk=None):
        """Renew the lease: the stack is destroyed ``lease`` seconds from now."""
        given = LeaseSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            stack = services.stack_renew_lease(
                user=request.user, stack=self.get_object(), lease_seconds=given.validated_data["lease"]
            )
        except services.LaunchError as exc:
            raise ServiceError(str(exc), code=exc.code, status_code=400) from None
        except services.StackStateError as exc:
            raise ServiceError(str(exc), code="invalid_state", status_code=409) from None
        return Response(StackSerializer(self.get_queryset().get(pk=stack.pk)).data)


class HostViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Hypervisor hosts (operators only). Creating one connects to it first; an unreachable URI is refused."""

    serializer_class = HostSerializer
    permission_classes = [permissions.IsAdminUser]
    queryset = Host.objects.all()

    def create(self, request, *args, **kwargs):
        given = HostSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        fields = {k: v for k, v in given.validated_data.items() if k != "enabled"}
        host = hosts.host_register(user=request.user, **fields)
        return Response(HostSerializer(host).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        host = hosts.host_refresh(host=self.get_object())
        return Response(HostSerializer(host).data)

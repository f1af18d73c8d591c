"""Hosts in the API: operators register, refresh and list them."""

from __future__ import annotations

from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from provisioning.api.serializers import HostSerializer
from provisioning.models import Host
from provisioning.services import hosts


class HostViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Hypervisor hosts (operators only). Creating one connects to it first; an unreachable URI is refused."""

    serializer_class = HostSerializer
    permission_classes = [permissions.IsAdminUser]
    queryset = Host.objects.all()

    def create(self, request: Request, *args, **kwargs) -> Response:
        given = HostSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        host = hosts.host_register(user=request.user, **given.validated_data)
        return Response(HostSerializer(host).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        host = hosts.host_refresh(host=self.get_object())
        return Response(HostSerializer(host).data)

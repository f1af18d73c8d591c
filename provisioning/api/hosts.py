"""Hosts in the API: operators register, refresh, drain and list them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from provisioning.api.serializers import HostSerializer
from provisioning.models import Host
from provisioning.services import hosts


class HostOutputSerializer(HostSerializer):
    """A host as the API shows it: its settings, what the portal observes, whether it is draining or in maintenance."""

    draining = serializers.BooleanField(
        read_only=True, help_text="Keeps its stacks until they end but gets no new ones (see drain/undrain)"
    )

    maintenance = serializers.BooleanField(
        read_only=True,
        help_text="Drained and evacuated for maintenance: its libvirtd may be stopped (see maintenance/, undrain/)",
    )
    maintenance_since = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When it entered maintenance; null when it is not in maintenance"
    )

    class Meta(HostSerializer.Meta):
        fields = [*HostSerializer.Meta.fields, "draining", "maintenance", "maintenance_since"]


@extend_schema_view(
    list=extend_schema(summary="List hosts"),
    create=extend_schema(summary="Register a host"),
    retrieve=extend_schema(summary="Get a host"),
    drain=extend_schema(summary="Drain a host: no new stacks"),
    undrain=extend_schema(summary="Undrain a host: new stacks again (and out of maintenance)"),
    refresh=extend_schema(summary="Read a host's capacity and health again"),
    repair=extend_schema(summary="Repair a host's storage pool"),
)
class HostViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Hypervisor hosts (operators only). Creating one connects to it first; an unreachable URI is refused."""

    serializer_class = HostOutputSerializer
    permission_classes = [permissions.IsAdminUser]
    queryset = Host.objects.all()

    @extend_schema(request=HostSerializer, responses={201: HostOutputSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        given = HostSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        host = hosts.host_register(user=request.user, **given.validated_data)
        return Response(HostOutputSerializer(host).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: HostOutputSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        host = hosts.host_refresh(host=self.get_object())
        return Response(HostOutputSerializer(host).data)

    @extend_schema(request=None, responses={200: HostOutputSerializer})
    @action(detail=True, methods=["post"])
    def repair(self, request: Request, pk: str | None = None) -> Response:
        """Set the host's storage pool up again (define, build, start), then re-read it; refresh only reads."""
        host = hosts.host_repair(user=request.user, host=self.get_object())
        return Response(HostOutputSerializer(host).data)

    @extend_schema(request=None, responses={200: HostOutputSerializer})
    @action(detail=True, methods=["post"])
    def drain(self, request: Request, pk: str | None = None) -> Response:
        """Place no new stacks on the host; the stacks it runs stay until they end."""
        host = hosts.host_drain(user=request.user, host=self.get_object())
        return Response(HostOutputSerializer(host).data)

    @extend_schema(request=None, responses={200: HostOutputSerializer})
    @action(detail=True, methods=["post"])
    def undrain(self, request: Request, pk: str | None = None) -> Response:
        """Let placement use the host again; a host in maintenance leaves it and is read again."""
        host = hosts.host_undrain(user=request.user, host=self.get_object())
        return Response(HostOutputSerializer(host).data)

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal import services
from portal.api.serializers import MembershipSerializer, MembershipSetSerializer, ProjectSerializer
from portal.models import Project, Role


class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's projects. Their owners manage members under ``members/``."""

    serializer_class = ProjectSerializer

    def get_queryset(self):
        return Project.objects.with_role(self.request.user)

    @extend_schema(methods=["GET"], responses={200: MembershipSerializer(many=True)})
    @extend_schema(methods=["POST"], request=MembershipSetSerializer, responses={200: MembershipSerializer})
    @action(detail=True, methods=["get", "post"])
    def members(self, request, pk=None):
        """List the members; POST ``{username, role}`` adds one or changes their role (owners only)."""
        project = self.get_object()
        if request.method == "GET":
            memberships = project.memberships.select_related("user").order_by("user__username")
            return Response(MembershipSerializer(memberships, many=True).data)
        given = MembershipSetSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        membership = services.membership_set(
            actor=request.user,
            project=project,
            username=given.validated_data["username"],
            role=Role(given.validated_data["role"]),
        )
        return Response(MembershipSerializer(membership).data)

    @action(detail=True, methods=["delete"], url_path=r"members/(?P<username>[^/]+)")
    def remove_member(self, request, pk=None, username=None):
        services.membership_remove(actor=request.user, project=self.get_object(), username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)

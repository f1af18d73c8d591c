from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal import errors, services
from portal.api.serializers import (
    MembershipSerializer,
    MembershipSetSerializer,
    ProjectChangeSerializer,
    ProjectQuotaSerializer,
    ProjectSerializer,
)
from portal.models import Project, Role
from provisioning.quotas import with_usage


@extend_schema_view(
    list=extend_schema(summary="List your projects"),
    retrieve=extend_schema(summary="Get a project with its quotas and usage"),
    partial_update=extend_schema(summary="Change a project's quotas"),
    members=[
        extend_schema(methods=["GET"], summary="List a project's members"),
        extend_schema(methods=["POST"], summary="Add a member or change their role"),
    ],
    remove_member=extend_schema(summary="Remove a member from a project"),
)
class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's projects with their quotas and usage. Operators change quotas with PATCH; owners manage
    members under ``members/``."""

    serializer_class = ProjectSerializer
    conflict_actions = ("members", "remove_member")  # a project must keep one owner

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Project.objects.none()
        return with_usage(Project.objects.with_role(self.request.user))

    @extend_schema(request=ProjectChangeSerializer, responses={200: ProjectSerializer})
    def partial_update(self, request, pk=None):
        """Change quotas (operators only): ``{"quota": {"instances": 20, "lease_seconds": 86400}}``."""
        project = self.get_object()  # outsiders: 404
        services.require_operator(request.user)  # members and owners: 403, whatever they send
        given = ProjectChangeSerializer(data=request.data)
        if not given.is_valid():
            fields = _dotted(given.errors)
            name, messages = next(iter(fields.items()))
            raise errors.Invalid(f"{name}: {messages[0]}", fields=fields)
        try:
            services.project_update(actor=request.user, project=project, **given.validated_data.get("quota", {}))
        except errors.Invalid as exc:
            # The service names the project's fields (max_instances); the API names them as in the body.
            names = {field.source: f"quota.{name}" for name, field in ProjectQuotaSerializer().fields.items()}
            raise errors.Invalid(
                exc.detail, fields={names.get(name, name): messages for name, messages in exc.fields.items()}
            ) from None
        return Response(ProjectSerializer(self.get_queryset().get(pk=project.pk)).data)

    # A project's members come whole, as a plain list (a handful of people): no pages, and the
    # schema must not promise any (pagination_class=None is what drf-spectacular reads).
    @extend_schema(methods=["GET"], responses={200: MembershipSerializer(many=True)})
    @extend_schema(methods=["POST"], request=MembershipSetSerializer, responses={200: MembershipSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
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
        project = self.get_object()
        # The path names a membership: one that does not exist is 404 like any other path.
        if not project.memberships.filter(user__username=username).exists():
            raise errors.NotFound(f"'{username}' is not in project '{project.name}'")
        services.membership_remove(actor=request.user, project=project, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _dotted(problems: dict, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors ({"quota": {"instances": [...]}}) as the error body names fields: "quota.instances"."""
    flat: dict[str, list[str]] = {}
    for name, value in problems.items():
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = [str(message) for message in value]
    return flat

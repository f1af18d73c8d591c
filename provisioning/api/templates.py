"""Stack templates in the API: shared ones (operators write them) and each project's own."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.filters import TemplateFilter
from provisioning.api.serializers import TemplateSerializer, TemplateWriteSerializer
from provisioning.models import StackTemplate, StackTemplateQuerySet
from provisioning.services import templates


@extend_schema_view(
    list=extend_schema(summary="List templates"),
    create=extend_schema(summary="Create a template"),
    retrieve=extend_schema(summary="Get a template"),
    update=extend_schema(summary="Replace a template"),
    destroy=extend_schema(summary="Delete a template"),
)
class TemplateViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Templates list a stack's tiers (YAML or JSON, see the README). PUT replaces one; DELETE removes it."""

    serializer_class = TemplateSerializer
    filterset_class = TemplateFilter

    def get_queryset(self) -> StackTemplateQuerySet:
        return StackTemplate.objects.visible_to(self.request.user).select_related("project")

    @extend_schema(request=TemplateWriteSerializer, responses={201: TemplateSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = TemplateWriteSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        data = given.validated_data
        template = templates.template_create(
            user=request.user,
            project=data.get("project"),
            name=data["name"],
            source=data["source"],
            description=data["description"],
        )
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TemplateWriteSerializer, responses={200: TemplateSerializer})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        template = self.get_object()
        given = TemplateWriteSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        data = given.validated_data
        template = templates.template_update(
            user=request.user,
            template=template,
            name=data["name"],
            source=data["source"],
            description=data["description"],
        )
        return Response(TemplateSerializer(template).data)

    def perform_destroy(self, instance: StackTemplate) -> None:
        templates.template_delete(user=self.request.user, template=instance)

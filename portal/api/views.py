from __future__ import annotations

from rest_framework import viewsets

from portal.api.serializers import ProjectSerializer
from portal.scoping import projects_with_role


class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return projects_with_role(self.request.user)

from __future__ import annotations

from rest_framework import serializers

from portal.models import Project
from portal.scoping import role_in


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "role", "max_instances", "max_vcpus", "max_memory_mib"]

    def get_role(self, project: Project) -> str | None:
        role = role_in(self.context["request"].user, project)
        return role.value if role else None

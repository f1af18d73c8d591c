from __future__ import annotations

from rest_framework import serializers

from portal.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="user_role", read_only=True, help_text="The caller's role in the project")

    class Meta:
        model = Project
        fields = ["id", "name", "description", "role", "max_instances", "max_vcpus", "max_memory_mib"]

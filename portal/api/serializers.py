from __future__ import annotations

from rest_framework import serializers

from portal.models import Membership, Project, Role


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="user_role", read_only=True, help_text="The caller's role in the project")

    class Meta:
        model = Project
        fields = ["id", "name", "description", "role", "max_instances", "max_vcpus", "max_memory_mib"]


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]


class MembershipSetSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)

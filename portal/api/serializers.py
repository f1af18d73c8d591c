from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from portal.models import Membership, Project, Role


class _RefusesUnknownKeys(serializers.Serializer):
    """A body with a key this serializer does not know is refused, not silently half-applied."""

    unknown_key = "unknown field"

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [self.unknown_key] for name in unknown})
        return super().to_internal_value(data)


class ProjectQuotaSerializer(_RefusesUnknownKeys):
    """The most a project may hold at once, and its longest lease. In a change, those left out stay."""

    unknown_key = "no such quota"

    stacks = serializers.IntegerField(source="max_stacks", required=False)
    instances = serializers.IntegerField(source="max_instances", required=False)
    vcpus = serializers.IntegerField(source="max_vcpus", required=False)
    memory_mib = serializers.IntegerField(source="max_memory_mib", required=False)
    disk_gib = serializers.IntegerField(source="max_disk_gib", required=False)
    lease_seconds = serializers.IntegerField(source="max_lease_seconds", required=False)


class ProjectUsageSerializer(serializers.Serializer):
    """What a project holds now: stacks and instances not deleted (failed ones included) and their sizes."""

    stacks = serializers.IntegerField(source="used_stacks")
    instances = serializers.IntegerField(source="used_instances")
    vcpus = serializers.IntegerField(source="used_vcpus")
    memory_mib = serializers.IntegerField(source="used_memory_mib")
    disk_gib = serializers.IntegerField(source="used_disk_gib")


class ProjectSerializer(serializers.ModelSerializer):
    """A project annotated with the caller's role (``with_role``) and what it holds (``quotas.with_usage``)."""

    role = serializers.CharField(source="user_role", read_only=True, help_text="The caller's role in the project")
    quota = ProjectQuotaSerializer(source="*", read_only=True)
    usage = ProjectUsageSerializer(source="*", read_only=True)

    class Meta:
        model = Project
        fields = ["id", "name", "description", "role", "quota", "usage"]


class ProjectChangeSerializer(_RefusesUnknownKeys):
    """What ``PATCH /projects/{id}/`` takes: operators change quotas, ``{"quota": {"instances": 20}}``."""

    unknown_key = "cannot be changed here; only quota can"

    quota = ProjectQuotaSerializer()


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]


class MembershipSetSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)

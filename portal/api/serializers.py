from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.fields import MAX_INT32, LeaseSecondsField
from portal.api.validation import StrictRequestSerializer
from portal.models import Membership, Project, Role
from transfers.vmcast_producer import may_see_vmcast_url, vmcast_url


def _quota(source: str) -> serializers.IntegerField:
    """A count or size limit: stored in a PositiveIntegerField, so 0 up to PostgreSQL's integer."""
    return serializers.IntegerField(source=source, required=False, min_value=0, max_value=MAX_INT32)


class ProjectQuotaSerializer(StrictRequestSerializer):
    """The most a project may hold at once, and its longest lease. In a change, those left out stay."""

    unknown_key = "no such quota"

    stacks = _quota("max_stacks")
    instances = _quota("max_instances")
    vcpus = _quota("max_vcpus")
    memory_mib = _quota("max_memory_mib")
    disk_gib = _quota("max_disk_gib")
    lease_seconds = LeaseSecondsField(subject="the longest lease", source="max_lease_seconds", required=False)


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
    vmcast_url = serializers.SerializerMethodField(
        help_text="The project's own catalog as a VMcast, its token in the URL (members and owners see it; null "
        "for viewers and until an owner makes one: POST vmcast/rotate/)"
    )

    class Meta:
        model = Project
        fields = ["id", "name", "description", "role", "quota", "usage", "vmcast_url"]

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_vmcast_url(self, project: Project) -> str | None:
        return vmcast_url(project) if may_see_vmcast_url(getattr(project, "user_role", None)) else None


class ProjectChangeSerializer(StrictRequestSerializer):
    """What ``PATCH /projects/{id}/`` takes: operators change quotas, ``{"quota": {"instances": 20}}``."""

    unknown_key = "cannot be changed here; only quota can"

    quota = ProjectQuotaSerializer(required=False)  # a PATCH without it changes nothing, like any PATCH


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]


class MembershipSetSerializer(StrictRequestSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)

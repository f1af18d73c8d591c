from __future__ import annotations

from rest_framework import serializers

from catalog.selectors import appliance_version_for_launch, appliances_visible_to
from portal.api.fields import ScopedPrimaryKeyField
from portal.models import Project
from provisioning.models import Host, Instance, Stack
from provisioning.selectors import stack_endpoints


class InstanceSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", default=None, read_only=True)
    appliance_version = serializers.CharField(source="appliance_version.__str__", read_only=True)

    class Meta:
        model = Instance
        fields = ["id", "name", "role", "status", "status_reason", "host", "vcpus", "memory_mib", "appliance_version"]


class EndpointSerializer(serializers.Serializer):
    role = serializers.CharField()
    guest_port = serializers.IntegerField()
    url = serializers.CharField()


class StackSerializer(serializers.ModelSerializer):
    instances = InstanceSerializer(many=True, read_only=True)
    endpoints = serializers.SerializerMethodField()

    class Meta:
        model = Stack
        fields = [
            "id",
            "name",
            "project",
            "status",
            "status_reason",
            "created_at",
            "running_at",
            "expires_at",
            "deleted_at",
            "endpoints",
            "instances",
        ]

    def get_endpoints(self, stack: Stack) -> list[dict]:
        return EndpointSerializer(stack_endpoints(stack), many=True).data


class StackCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    project = ScopedPrimaryKeyField(scope=Project.objects.visible_to)
    appliance = ScopedPrimaryKeyField(scope=appliances_visible_to)
    version = serializers.CharField(required=False, help_text="Appliance version; the newest when omitted")
    lease = serializers.IntegerField(required=False, min_value=1, help_text="Lease in seconds")

    def validate(self, attrs: dict) -> dict:
        attrs["appliance_version"] = appliance_version_for_launch(
            user=self.context["request"].user, appliance=attrs["appliance"], version=attrs.get("version")
        )
        return attrs


class LeaseSerializer(serializers.Serializer):
    lease = serializers.IntegerField(min_value=1, help_text="Seconds from now until the stack is destroyed")


class HostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Host
        fields = ["id", *Host.SETTABLE_FIELDS, *Host.OBSERVED_FIELDS]
        read_only_fields = Host.OBSERVED_FIELDS

from __future__ import annotations

import json

from rest_framework import serializers

from catalog.selectors import appliance_version_for_launch, appliances_visible_to
from portal.api.fields import LeaseSecondsField, NameField, ScopedPrimaryKeyField
from portal.api.validation import ExactlyOneOf, StrictRequestSerializer
from portal.models import Project
from provisioning.api.template_schema import StoredDocumentField, TemplateDocumentField
from provisioning.models import Host, Instance, Stack, StackTemplate
from provisioning.name_rules import STACK_NAME, TEMPLATE_NAME
from provisioning.selectors import stack_endpoints
from provisioning.template_limits import MAX_SOURCE_BYTES
from provisioning.templates import validate_document


class InstanceSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", default=None, read_only=True)
    appliance_version = serializers.CharField(source="appliance_version.__str__", read_only=True)

    class Meta:
        model = Instance
        fields = [
            "id",
            "name",
            "role",
            "status",
            "status_reason",
            "host",
            "address",
            "vcpus",
            "memory_mib",
            "disk_gib",
            "appliance_version",
        ]


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
            "template",
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


class StackCreateSerializer(ExactlyOneOf):
    """Either ``template`` (every tier of it) or ``appliance`` (a one-tier stack), not both."""

    exactly_one_of = ("template", "appliance")
    exactly_one_of_message = "give a template or an appliance (one of them)"

    name = NameField(rule=STACK_NAME)
    project = ScopedPrimaryKeyField(scope=Project.objects.visible_to)
    template = ScopedPrimaryKeyField(scope=StackTemplate.objects.visible_to, required=False)
    appliance = ScopedPrimaryKeyField(scope=appliances_visible_to, required=False)
    version = serializers.CharField(
        required=False, max_length=50, help_text="Appliance version; the newest when omitted"
    )
    lease = LeaseSecondsField(required=False, help_text="Lease in seconds")

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if "appliance" in attrs:
            attrs["appliance_version"] = appliance_version_for_launch(
                user=self.context["request"].user, appliance=attrs["appliance"], version=attrs.get("version")
            )
        return attrs


class TemplateSerializer(serializers.ModelSerializer):
    document = StoredDocumentField(read_only=True)

    class Meta:
        model = StackTemplate
        fields = ["id", "name", "project", "description", "source", "document", "created_at", "updated_at"]


class TemplateWriteSerializer(ExactlyOneOf):
    """``source`` is the document as YAML or JSON text; ``document`` the same as a JSON object."""

    exactly_one_of = ("source", "document")
    exactly_one_of_message = "give the template as 'source' text or as 'document'"

    name = NameField(rule=TEMPLATE_NAME)
    project = ScopedPrimaryKeyField(
        scope=Project.objects.visible_to,
        required=False,
        allow_null=True,
        help_text="Leave empty (operators only) for a shared template",
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")
    source = serializers.CharField(required=False, max_length=MAX_SOURCE_BYTES, trim_whitespace=False)
    document = TemplateDocumentField(required=False)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if "document" in attrs:
            document = attrs.pop("document")
            # Checked before it is written out as text: its problems are named by their paths, and
            # json.dumps never meets what it cannot write (nesting deep enough to exhaust the stack).
            validate_document(document, versions_as_text=True)
            attrs["source"] = json.dumps(document, indent=2)
        return attrs


class LeaseSerializer(StrictRequestSerializer):
    lease = LeaseSecondsField(help_text="Seconds from now until the stack is destroyed")
    shorten = serializers.BooleanField(
        default=False, help_text="Required to set an end earlier than the current one; refused otherwise"
    )


class HostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Host
        fields = ["id", *Host.SETTABLE_FIELDS, *Host.OBSERVED_FIELDS]
        read_only_fields = Host.OBSERVED_FIELDS

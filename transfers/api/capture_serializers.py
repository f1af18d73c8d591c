"""What the capture and VMcast endpoints take and answer: one input and one output serializer each."""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.fields import FullMatchRegexValidator
from portal.api.validation import StrictRequestSerializer
from provisioning.models import Stack, StackTemplate
from transfers.capture import APPLIANCE_PREFIX, PREFIX_RULE, VERSION, VERSION_RULE, progress_percent
from transfers.models import Capture


def _rule(pattern: re.Pattern[str], message: str) -> FullMatchRegexValidator:
    """The service's own check (``transfers.capture``), anchored for the schema's ECMA pattern."""
    return FullMatchRegexValidator(re.compile(rf"^(?:{pattern.pattern})$"), message)


class CaptureCreateSerializer(StrictRequestSerializer):
    """``POST /stacks/{id}/capture/``: what the captured appliances and versions are called.

    Tier ``db`` of the stack becomes appliance ``<appliance_prefix>-db`` at ``version`` in the
    project's own catalog; the template is named after the stack and the version.
    """

    appliance_prefix = serializers.CharField(
        trim_whitespace=False,
        validators=[_rule(APPLIANCE_PREFIX, f"the appliance prefix must be {PREFIX_RULE}")],
        help_text=f"The appliances' prefix: {PREFIX_RULE}",
    )
    version = serializers.CharField(
        trim_whitespace=False,
        validators=[_rule(VERSION, f"the version must be {VERSION_RULE}")],
        help_text=f"The versions' name: {VERSION_RULE}",
    )


class CaptureProgressSerializer(serializers.Serializer):
    percent = serializers.SerializerMethodField(help_text="0-100; null until the disks' sizes are known")
    bytes_done = serializers.IntegerField(help_text="Disk bytes copied so far")
    bytes_total = serializers.IntegerField(help_text="Disk bytes of every tier")

    @extend_schema_field({"type": "integer", "minimum": 0, "maximum": 100, "nullable": True})
    def get_percent(self, capture: Capture) -> int | None:
        return progress_percent(capture)


class CaptureSerializer(serializers.ModelSerializer):
    """A capture job; ``template`` is the id of the stack template it made, once ``ready``."""

    stack: serializers.PrimaryKeyRelatedField[Stack] = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="null once the stack is deleted"
    )
    template: serializers.PrimaryKeyRelatedField[StackTemplate] = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The template made; null until ready"
    )
    template_name = serializers.CharField(source="template.name", default=None, read_only=True)
    appliances = serializers.SerializerMethodField(help_text="The appliance identifiers made, once ready")
    progress = CaptureProgressSerializer(source="*", read_only=True)

    class Meta:
        model = Capture
        fields = [
            "id",
            "project",
            "stack",
            "source_name",
            "appliance_prefix",
            "version",
            "status",
            "progress",
            "error",
            "template",
            "template_name",
            "appliances",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_appliances(self, capture: Capture) -> list[str]:
        if capture.template is None:
            return []
        return [tier["appliance"] for tier in capture.template.document.get("tiers", [])]


class VmcastSerializer(serializers.Serializer):
    vmcast_url = serializers.CharField(
        allow_null=True, help_text="The project's VMcast (its own catalog) with its token; null: none made"
    )

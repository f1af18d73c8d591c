"""What the API says of an upload (``GET /api/v1/uploads/`` and ``GET /api/v1/uploads/{id}/``)."""

from __future__ import annotations

from rest_framework import serializers

from portal.api.filters import IdFilter, StrictFilterSet
from transfers.models import Upload


class UploadSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    offset = serializers.IntegerField(read_only=True, help_text="Bytes received so far")
    length = serializers.IntegerField(read_only=True, help_text="The file's size in bytes (tus Upload-Length)")
    error = serializers.CharField(read_only=True, help_text="Why the upload failed; empty otherwise")
    version_id = serializers.IntegerField(
        source="result_id", read_only=True, allow_null=True, help_text="The appliance version made, once ready"
    )
    appliance_id = serializers.IntegerField(
        source="result.appliance_id", read_only=True, allow_null=True, help_text="Its appliance, once ready"
    )

    class Meta:
        model = Upload
        fields = [
            "id",
            "project",
            "appliance",
            "version",
            "title",
            "filename",
            "service_port",
            "role",
            "status",
            "offset",
            "length",
            "error",
            "version_id",
            "appliance_id",
            "created_at",
            "updated_at",
            "expires_at",
        ]
        read_only_fields = fields


class UploadFilter(StrictFilterSet):
    project = IdFilter(field_name="project_id")

    class Meta:
        model = Upload
        fields = ["project", "status"]

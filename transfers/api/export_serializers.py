"""What the API says of an export, and what asking for one takes."""

from __future__ import annotations

from django.urls import reverse
from django_filters import rest_framework as filters  # type: ignore[import-untyped]
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.filters import IdFilter, StrictFilterSet
from transfers import exports
from transfers.models import Export, JobStatus


class InstanceExportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=[str(f) for f in exports.DISK_FORMATS],
        default=Export.Format.QCOW2.value,
        help_text="The image's format: qcow2 (compact) or raw (the whole disk, byte for byte)",
    )


class ExportSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    stack = serializers.IntegerField(source="stack_id", read_only=True, allow_null=True)
    instance = serializers.IntegerField(source="instance_id", read_only=True, allow_null=True)
    status = serializers.SerializerMethodField(
        help_text="pending, running, ready, failed; expired once a ready export's file was removed"
    )
    bytes_done = serializers.IntegerField(read_only=True, help_text="Bytes read and written so far")
    bytes_total = serializers.IntegerField(read_only=True, help_text="What the whole job reads and writes, estimated")
    size_bytes = serializers.IntegerField(read_only=True, help_text="The finished file's size")
    sha256 = serializers.CharField(read_only=True, help_text="The finished file's SHA-256, in hex")
    error = serializers.CharField(read_only=True, help_text="Why the export failed; empty otherwise")
    download_url = serializers.SerializerMethodField(
        help_text="Once ready and until expires_at: the file, for anyone holding this URL (no sign-in needed)"
    )

    class Meta:
        model = Export
        fields = [
            "id",
            "project",
            "stack",
            "instance",
            "source_name",
            "format",
            "status",
            "bytes_done",
            "bytes_total",
            "size_bytes",
            "sha256",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "download_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=[*(str(s) for s in JobStatus), "expired"]))
    def get_status(self, export: Export) -> str:
        return "expired" if exports.is_expired(export) else str(export.status)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, export: Export) -> str | None:
        if export.status != JobStatus.READY or exports.is_expired(export):
            return None
        path = reverse("export-download", args=[export.pk, exports.download_secret(export), exports.file_name(export)])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ExportFilter(StrictFilterSet):
    project = IdFilter(field_name="project_id")
    stack = IdFilter(field_name="stack_id")
    # Not "format": DRF reads ?format= as the answer's renderer (and answers 404 for "ova").
    file_format = filters.ChoiceFilter(field_name="format", choices=Export.Format.choices)

    class Meta:
        model = Export
        fields = ["project", "stack", "file_format"]

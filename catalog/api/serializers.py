from __future__ import annotations

from rest_framework import serializers

from catalog.models import Appliance, ApplianceVersion, Feed
from catalog.redaction import redact_url
from portal.api.fields import ScopedPrimaryKeyField
from portal.api.validation import StrictRequestSerializer
from portal.models import Project


class RedactedURLField(serializers.CharField):
    """A stored feed or image URL, shown without the credentials it may carry (the fetcher keeps them)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: str) -> str:
        return redact_url(value)


class FeedSerializer(serializers.ModelSerializer):
    url = RedactedURLField()

    class Meta:
        model = Feed
        fields = [
            "id",
            "url",
            "title",
            "format",
            "project",
            "created_at",
            "last_status",
            "last_error",
            "last_import_at",
            "last_item_count",
        ]
        read_only_fields = fields


class FeedCreateSerializer(StrictRequestSerializer):
    url = serializers.CharField(
        max_length=1000, help_text="May carry credentials (https://user:pass@host/...): used to fetch, never shown"
    )
    project = ScopedPrimaryKeyField(
        # Viewers' projects resolve too, so the service answers them 403 rather than "no such project".
        scope=Project.objects.visible_to,
        required=False,
        allow_null=True,
        help_text="Leave empty (operators only) for the shared catalog",
    )


class ApplianceVersionSerializer(serializers.ModelSerializer):
    image_url = RedactedURLField()
    # Null while unknown: a feed without checksums has its version's pinned by the first download.
    sha256 = serializers.CharField(source="image.sha256", read_only=True, allow_null=True)
    # This version's own download only: another project's copy of the same bytes says nothing here.
    image_status = serializers.ChoiceField(
        source="image_state.status", choices=ApplianceVersion.ImageStatus.choices, read_only=True
    )

    class Meta:
        model = ApplianceVersion
        fields = [
            "id",
            "version",
            "image_url",
            "size_bytes",
            "disk_format",
            "arch",
            "sha256",
            "checksum_source",
            "package",
            "image_status",
            "withdrawn",
            "min_ram_mib",
            "min_vcpus",
            "service_port",
            "published_at",
        ]


class ApplianceSerializer(serializers.ModelSerializer):
    versions = ApplianceVersionSerializer(many=True, read_only=True)
    feed = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Appliance
        fields = ["id", "identifier", "title", "description", "role", "feed", "versions"]

"""A version may use cached bytes only once its own URL delivered them (ImageDelivery); the cached
image keeps only the bytes. Versions learn the disk size their feed declares.

Existing versions whose image was downloaded from their own URL (the claim's source digest says
which) count as delivered; every other version downloads once from its own URL before use.
"""

import hashlib

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def deliveries_from_past_downloads(apps, schema_editor):
    CachedImage = apps.get_model("catalog", "CachedImage")
    ApplianceVersion = apps.get_model("catalog", "ApplianceVersion")
    ImageDelivery = apps.get_model("catalog", "ImageDelivery")
    now = django.utils.timezone.now()
    for version in ApplianceVersion.objects.filter(image__status="ready").select_related("image"):
        source = hashlib.sha256(version.image_url.encode()).hexdigest()
        if version.image.download_source == source:
            ImageDelivery.objects.create(
                version=version, source=source, status="delivered", finished_at=now, updated_at=now
            )
    # Download state moves to the deliveries: a cached image is stored or it is not.
    CachedImage.objects.exclude(status="ready").update(status="missing", path="", size_bytes=0)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_watch_imports_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="applianceversion",
            name="declared_virtual_bytes",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="ImageDelivery",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(max_length=64)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("downloading", "Downloading"),
                            ("delivered", "Delivered"),
                            ("error", "Error"),
                        ],
                        default="queued",
                        max_length=12,
                    ),
                ),
                ("error", models.TextField(blank=True)),
                ("bytes_done", models.BigIntegerField(default=0)),
                ("bytes_total", models.BigIntegerField(default=0)),
                ("reserved_bytes", models.BigIntegerField(default=0)),
                ("requested_at", models.DateTimeField(blank=True, null=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "version",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="delivery",
                        to="catalog.applianceversion",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "image deliveries",
            },
        ),
        migrations.RunPython(deliveries_from_past_downloads, migrations.RunPython.noop),
        migrations.RemoveField(model_name="cachedimage", name="bytes_done"),
        migrations.RemoveField(model_name="cachedimage", name="bytes_total"),
        migrations.RemoveField(model_name="cachedimage", name="download_source"),
        migrations.RemoveField(model_name="cachedimage", name="error"),
        migrations.AlterField(
            model_name="cachedimage",
            name="status",
            field=models.CharField(
                choices=[("missing", "Not downloaded"), ("ready", "Ready")], default="missing", max_length=12
            ),
        ),
    ]

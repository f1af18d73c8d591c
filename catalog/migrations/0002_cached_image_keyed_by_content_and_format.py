"""Cached images are keyed by content *and* declared format, so one feed's declaration cannot change
another's image; they also learn when they were last used (for eviction) and where the current
download claim reads from (a launch waits only for a download from its own URL)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0001_initial"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="cachedimage",
            constraint=models.UniqueConstraint(
                fields=("sha256", "source_format"), name="one_cached_image_per_content_and_format"
            ),
        ),
        migrations.AlterField(
            model_name="cachedimage",
            name="sha256",
            field=models.CharField(max_length=64),
        ),
        migrations.AddField(
            model_name="cachedimage",
            name="last_used_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="cachedimage",
            name="download_source",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]

"""An upload may say the port its service listens on and the tier name its one-click launch gives it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("transfers", "0004_watch_captures_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="upload",
            name="service_port",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="upload",
            name="role",
            field=models.CharField(blank=True, max_length=30),
        ),
    ]

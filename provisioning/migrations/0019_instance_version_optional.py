"""An instance's appliance version may be empty: a deleted stack's record no longer keeps its feed from removal."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0007_feed_formats_and_version_sources"),
        ("provisioning", "0018_sweep_idle_stacks_schedule"),
    ]

    operations = [
        migrations.AlterField(
            model_name="instance",
            name="appliance_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="instances",
                to="catalog.applianceversion",
            ),
        ),
    ]

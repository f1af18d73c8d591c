"""Old events' moments move out of their text into ``moment`` (see provisioning.baked_moments)."""

from django.db import migrations

from provisioning.baked_moments import unbake_event_moments


def unbake(apps, schema_editor):
    unbake_event_moments(apps.get_model("provisioning", "StackEvent"))


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0021_probe_endpoints_schedule")]

    operations = [migrations.RunPython(unbake, migrations.RunPython.noop)]

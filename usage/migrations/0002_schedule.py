"""sample-usage, every minute: what each active stack held since its last sample is added to its
day's usage record (usage/sampler.py). Run by the control cluster, as every schedule."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def add_schedule(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="sample-usage",
        defaults={"func": "usage.tasks.sample_usage", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name="sample-usage").delete()


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial"), ("django_q", "0018_task_success_index")]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

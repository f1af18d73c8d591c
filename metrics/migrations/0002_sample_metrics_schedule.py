"""sample-metrics, every METRICS_SAMPLE_SECONDS (as set when migrating): every guest's and host's figures
are read through libvirt (metrics/sampler.py). Run by the control cluster, as every schedule.

django-q2's interval schedules count in whole minutes, so a setting under a minute samples every
minute; a setting changed later takes effect when the schedule's row is changed (the admin's
Scheduled tasks page).
"""

from django.conf import settings
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

NAME = "sample-metrics"


def add_schedule(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    minutes = max(1, round(settings.METRICS_SAMPLE_SECONDS / 60))
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME,
        defaults={"func": "metrics.tasks.sample_metrics", "schedule_type": "I", "minutes": minutes, "repeats": -1},
    )


def remove_schedule(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial"), ("django_q", "0018_task_success_index")]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

"""watch-builds, every five minutes: builds whose worker stopped are failed (and cleaned up),
builds that never started are queued again (see provisioning.services.watchdog)."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="watch-builds",
        defaults={"func": "provisioning.tasks.watch_builds", "schedule_type": "I", "minutes": 5, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="watch-builds").delete()


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0005_stacks_of_tiers"), ("django_q", "0018_task_success_index")]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

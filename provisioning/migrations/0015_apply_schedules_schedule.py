"""apply-schedules, every minute: stacks with a weekly schedule are shelved and unshelved on time."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="apply-schedules",
        defaults={
            "func": "provisioning.tasks.apply_schedules",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="apply-schedules").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0014_event_moments_schedules_snapshot_state"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

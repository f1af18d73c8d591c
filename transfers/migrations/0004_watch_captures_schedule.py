"""watch-captures, every five minutes: a capture whose worker died ends as failed, with what it made removed."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="watch-captures",
        defaults={
            "func": "transfers.capture_tasks.captures_watchdog",
            "schedule_type": "I",
            "minutes": 5,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="watch-captures").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("transfers", "0003_export_sweep"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

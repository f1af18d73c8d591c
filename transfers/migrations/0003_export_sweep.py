"""sweep-exports, every five minutes: expired exports lose their file (a download then answers 410),
exports whose worker died are ended, and folders no export owns are removed."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="sweep-exports",
        defaults={
            "func": "transfers.export_tasks.sweep_exports",
            "schedule_type": "I",
            "minutes": 5,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="sweep-exports").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("transfers", "0002_sweep_uploads_schedule"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

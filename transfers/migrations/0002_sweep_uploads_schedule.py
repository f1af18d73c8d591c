"""sweep-uploads, every five minutes: expired uploads lose their file and row; lost checks are ended."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="sweep-uploads",
        defaults={
            "func": "transfers.upload_tasks.sweep_uploads",
            "schedule_type": "I",
            "minutes": 5,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="sweep-uploads").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("transfers", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

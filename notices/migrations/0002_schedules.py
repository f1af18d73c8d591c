"""Periodic work of the notices, run by the django-q2 control cluster:

- send-lease-warnings, every minute: warnings whose moment before a lease end has come;
- send-webhooks, every minute: webhook deliveries that are due (new ones and retries).
"""

from django.db import migrations

SCHEDULES = {
    "send-lease-warnings": ("notices.tasks.send_lease_warnings", 1),
    "send-webhooks": ("notices.tasks.send_webhook_deliveries", 1),
}


def add_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, (func, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1}
        )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notices", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(add_schedules, remove_schedules)]

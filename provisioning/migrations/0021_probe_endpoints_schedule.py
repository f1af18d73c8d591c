"""probe-endpoints, every minute: published ports of running guests that have not answered yet are tried."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="probe-endpoints",
        defaults={
            "func": "provisioning.tasks.probe_endpoints",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="probe-endpoints").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0020_endpoint_readiness_and_event_actor"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

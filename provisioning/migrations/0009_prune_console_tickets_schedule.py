"""prune-console-tickets, every hour: ticket rows a day past their use are deleted (the audit log
keeps every console session)."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="prune-console-tickets",
        defaults={
            "func": "provisioning.tasks.prune_console_tickets",
            "schedule_type": "I",
            "minutes": 60,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="prune-console-tickets").delete()


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0008_console_password"), ("django_q", "0018_task_success_index")]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

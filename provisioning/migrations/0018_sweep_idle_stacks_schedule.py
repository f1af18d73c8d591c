"""sweep-idle-stacks, every minute: idle running stacks are warned, then shelved."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="sweep-idle-stacks",
        defaults={
            "func": "provisioning.tasks.sweep_idle_stacks",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="sweep-idle-stacks").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0017_stack_activity"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

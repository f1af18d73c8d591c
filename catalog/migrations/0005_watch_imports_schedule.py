"""watch-imports, every five minutes: feed imports whose worker went away end as failed."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="watch-imports",
        defaults={"func": "catalog.tasks.watch_imports", "schedule_type": "I", "minutes": 5, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="watch-imports").delete()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_feed_status_changed_at"), ("django_q", "0018_task_success_index")]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]

"""Periodic work, run by the django-q2 cluster:

- expire-leases, every minute: stacks whose lease ran out are destroyed, stuck teardowns retried;
- refresh-hosts, every two minutes: each enabled host is asked for its capacity and health;
- refresh-feeds, every hour: every subscribed VMcast is imported again to pick up new versions;
- reconcile-hosts, every ten minutes: domains and overlay volumes no instance claims are removed.
"""

from django.db import migrations

SCHEDULES = {
    "expire-leases": ("provisioning.tasks.expire_leases", 1),
    "refresh-hosts": ("provisioning.tasks.refresh_hosts", 2),
    "refresh-feeds": ("catalog.tasks.refresh_feeds", 60),
    "reconcile-hosts": ("provisioning.tasks.reconcile_hosts", 10),
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
        ("provisioning", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(add_schedules, remove_schedules)]

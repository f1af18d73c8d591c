from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

# The statuses in which an instance counts against its host (``provisioning.models.ACTIVE_STATUSES``
# when this migration was written).
ACTIVE = ["pending", "building", "running", "deleting", "error"]


def count_what_hosts_hold(apps, schema_editor):
    """Set every host's counters to what its instances hold."""
    Host = apps.get_model("provisioning", "Host")
    Instance = apps.get_model("provisioning", "Instance")
    held = Instance.objects.filter(host_id=OuterRef("pk"), status__in=ACTIVE).order_by().values("host_id")
    Host.objects.update(
        **{
            counter: Coalesce(Subquery(held.annotate(total=total).values("total")), Value(0))
            for counter, total in {
                "allocated_vcpus": Sum("vcpus"),
                "allocated_memory_mib": Sum("memory_mib"),
                "allocated_disk_gib": Sum("disk_gib"),
                "allocated_instances": Count("id"),
            }.items()
        }
    )


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0011_stack_teardown_backoff"),
    ]

    operations = [
        migrations.AddField(
            model_name="host",
            name="allocated_vcpus",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="host",
            name="allocated_memory_mib",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="host",
            name="allocated_disk_gib",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="host",
            name="allocated_instances",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(count_what_hosts_hold, migrations.RunPython.noop),
    ]

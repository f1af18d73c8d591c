from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0003_host_image_upload_claim"),
    ]

    operations = [
        migrations.AddField(
            model_name="host",
            name="guests_bind_host_ports",
            field=models.BooleanField(
                default=True, help_text="Whether published ports are bound on the host (not on simulated hosts)"
            ),
        ),
    ]

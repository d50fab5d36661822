"""`NotificationProvider` now lives in the providers app (providers 0003): state only, the
table and the foreign keys pointing at it stay as they are."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0009_template_version"),
        ("providers", "0003_notificationprovider_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="notificationdelivery",
                    name="provider_record",
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="deliveries", to="providers.notificationprovider"),
                ),
                migrations.AlterField(
                    model_name="notificationauditlog",
                    name="provider",
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="providers.notificationprovider"),
                ),
                migrations.AlterField(
                    model_name="channelconfiguration",
                    name="default_provider",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="providers.notificationprovider"),
                ),
                migrations.DeleteModel(name="NotificationProvider"),
            ],
            database_operations=[],
        ),
    ]

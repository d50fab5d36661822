"""The provider record (`NotificationProvider`) moves here from the notifications app.

State only: the table keeps its name (`notifications_notificationprovider`), its rows, its
constraints and every foreign key pointing at it. The content type (and so the admin
permissions and log entries attached to it) follows the model.
"""
import django.db.models.deletion
from django.db import migrations, models

import common.validators


def content_type_follow(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="providers", model="notificationprovider").exists():
        ContentType.objects.using(db).filter(app_label="notifications", model="notificationprovider").update(app_label="providers")


def content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="notifications", model="notificationprovider").exists():
        ContentType.objects.using(db).filter(app_label="providers", model="notificationprovider").update(app_label="notifications")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0006_platform_admin_permission"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("notifications", "0007_story_invitation_stop_link_and_declined"),
        ("providers", "0002_provideroutbox_sealed"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="NotificationProvider",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("code", models.CharField(help_text='Registry code, e.g. "twilio_sms", "sendgrid".', max_length=50)),
                        ("channel", models.CharField(choices=[("IN_APP", "In-app"), ("EMAIL", "Email"), ("PUSH", "Push"), ("SMS", "SMS"), ("WHATSAPP", "WhatsApp"), ("VOICE", "Voice call")], max_length=10)),
                        ("name", models.CharField(max_length=200)),
                        ("description", models.TextField(blank=True)),
                        ("priority", models.IntegerField(default=0, help_text="Lower is tried first.")),
                        ("is_active", models.BooleanField(default=True)),
                        ("is_default", models.BooleanField(default=False)),
                        ("config", models.JSONField(blank=True, default=dict, help_text="Non-secret settings.")),
                        ("secrets", models.TextField(blank=True, help_text="Encrypted JSON of sensitive parameters (providers.secrets.secrets_encrypt).")),
                        ("secret_env_refs", models.JSONField(blank=True, default=dict, help_text='Sensitive parameters read from the environment, e.g. {"auth_token": "TWILIO_AUTH_TOKEN"}.', validators=[common.validators.validate_string_dict])),
                        ("rate_limit_per_minute", models.PositiveIntegerField(blank=True, null=True)),
                        ("daily_limit", models.PositiveIntegerField(blank=True, null=True)),
                        ("health_status", models.CharField(choices=[("HEALTHY", "Healthy"), ("DEGRADED", "Degraded"), ("UNHEALTHY", "Unhealthy"), ("UNKNOWN", "Unknown")], default="UNKNOWN", max_length=10)),
                        ("health_message", models.CharField(blank=True, max_length=500)),
                        ("last_health_check_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("organization", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="notification_providers", to="accounts.organization")),
                    ],
                    options={
                        "db_table": "notifications_notificationprovider",
                        "ordering": ["channel", "priority", "id"],
                        "indexes": [models.Index(fields=["channel", "is_active", "priority"], name="provider_channel_active_idx")],
                        "constraints": [
                            models.UniqueConstraint(condition=models.Q(("organization__isnull", True)), fields=("code",), name="uniq_global_provider_code"),
                            models.UniqueConstraint(condition=models.Q(("organization__isnull", False)), fields=("organization", "code"), name="uniq_org_provider_code"),
                        ],
                    },
                ),
                migrations.AlterField(
                    model_name="providercostdaily",
                    name="provider",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="daily_costs", to="providers.notificationprovider"),
                ),
                migrations.AlterField(
                    model_name="providerhealthmetric",
                    name="provider",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="health_metrics", to="providers.notificationprovider"),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_follow, content_type_back, elidable=True),
    ]

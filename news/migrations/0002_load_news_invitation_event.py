"""Add the `news.invitation` event type and its templates to databases created before it shipped
(catalog_load is idempotent and leaves what operators changed alone)."""
from types import SimpleNamespace

from django.db import migrations


def load(apps, schema_editor):
    from notifications.taxonomy import catalog_load

    catalog_load(
        models=SimpleNamespace(
            EventType=apps.get_model("notifications", "EventType"),
            NotificationTemplate=apps.get_model("notifications", "NotificationTemplate"),
            TemplateChannel=apps.get_model("notifications", "TemplateChannel"),
        )
    )


class Migration(migrations.Migration):
    dependencies = [("news", "0001_initial"), ("notifications", "0007_story_invitation_stop_link_and_declined")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]

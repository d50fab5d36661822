"""Ship the event taxonomy and the default templates with the schema, so a fresh database has them."""
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
    dependencies = [("notifications", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]

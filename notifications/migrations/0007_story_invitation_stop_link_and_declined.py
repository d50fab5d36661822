"""Story invitations: the email footer carries the invitee's link to stop invitations, and the
inviter hears of declines (`story.invitation_declined`) as well as acceptances."""
from types import SimpleNamespace

from django.db import migrations

KEY = "story.invitation"
CONTENT_FIELDS = ("subject", "title", "body", "body_html", "action_label")


def forward(apps, schema_editor):
    from notifications.taxonomy import EVENTS_BY_KEY, LANGUAGES, _event_type_values, catalog_load, channel_content

    EventType = apps.get_model("notifications", "EventType")
    TemplateChannel = apps.get_model("notifications", "TemplateChannel")
    catalog_load(models=SimpleNamespace(
        EventType=EventType,
        NotificationTemplate=apps.get_model("notifications", "NotificationTemplate"),
        TemplateChannel=TemplateChannel,
    ))
    event = EVENTS_BY_KEY[KEY]
    EventType.objects.filter(key=KEY).update(variable_mapping=_event_type_values(event)["variable_mapping"])
    values = {}
    for language in LANGUAGES:
        content = channel_content(event, "EMAIL", language)
        values[f"body_{language}"] = content["body"]
        values[f"body_html_{language}"] = content["body_html"]
    values["body"], values["body_html"] = values["body_en"], values["body_html_en"]
    TemplateChannel.objects.filter(template__key=KEY, template__organization__isnull=True, channel="EMAIL").update(**values)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0006_bus_command_subscriber_audit")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]

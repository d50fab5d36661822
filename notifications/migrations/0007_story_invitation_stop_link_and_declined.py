"""Story invitations: the email footer carries the invitee's link to stop invitations, and the
inviter hears of declines (`story.invitation_declined`) as well as acceptances.

A fresh database already has the current copy from 0002. An older one gets the new footer only
in the columns that still hold the copy shipped before (digests below): an operator's edited
template is left as they wrote it. The event type gains the `invite.stop_url` variable without
losing any the operator added.
"""
from types import SimpleNamespace

from django.db import migrations

KEY = "story.invitation"
# sha256 of the story.invitation EMAIL copy shipped before this migration.
PREVIOUS_EMAIL = {
    "body_en": "53d5570e77986f650dbe3ca0b10c17533f74703c908423dc01bbcac48af4dea7",
    "body_html_en": "d4fc3ba16729ef75dc0b4ffb6fc7a16936f559d15cb1a67e1e63fad1639f92a3",
    "body_fr": "2520de9d2aa9e22214ad9c0d791f318c686b9379dba2833758f93f38e2b86c7b",
    "body_html_fr": "8b33f960f3c8bb218946934f9a947bf42fc00da8d83a002fb792dfc6ad35b414",
}
NEW_VARIABLES = {"invite.stop_url": "data.stopUrl"}


def forward(apps, schema_editor):
    from notifications.taxonomy import catalog_load, shipped_content_upgrade

    models = SimpleNamespace(
        EventType=apps.get_model("notifications", "EventType"),
        NotificationTemplate=apps.get_model("notifications", "NotificationTemplate"),
        TemplateChannel=apps.get_model("notifications", "TemplateChannel"),
    )
    catalog_load(models=models)  # creates story.invitation_declined; never overwrites
    for event_type in models.EventType.objects.filter(key=KEY):
        mapping = dict(event_type.variable_mapping or {})
        missing = {name: path for name, path in NEW_VARIABLES.items() if name not in mapping}
        if missing:
            event_type.variable_mapping = {**mapping, **missing}
            event_type.save(update_fields=["variable_mapping"])
    shipped_content_upgrade(models=models, key=KEY, channel="EMAIL", previous=PREVIOUS_EMAIL)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0006_bus_command_subscriber_audit")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]

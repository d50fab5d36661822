"""The shipped event taxonomy's default templates: per-channel content built from the
catalogue (`notifications.catalogue`) and `catalog_load()`, which writes both to the
database. Loading is idempotent and, unless asked to `update`, never overwrites what
operators changed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .enums import Channel, Criticality
from .catalogue import (
    ALL_CHANNELS,
    EVENTS,
    EVENTS_BY_KEY,
    LANGUAGES,
    EventDefinition,
)

# Migrations (0007) read EVENTS_BY_KEY and LANGUAGES through this module: they stay importable here.
__all__ = ["EVENTS_BY_KEY", "LANGUAGES", "catalog_load", "channel_content", "channel_options", "shipped_content_upgrade"]


# --- channel content ------------------------------------------------------------------------

_EMAIL_FOOTER = {
    "en": "You receive this message because of your notification settings in Troubadour.",
    "fr": "Vous recevez ce message en raison de vos préférences de notification Troubadour.",
}
_VOICE_GREETING = {"en": "Hello{% if recipient.name %} {{ recipient.name }}{% endif %}, this is Troubadour.", "fr": "Bonjour{% if recipient.name %} {{ recipient.name }}{% endif %}, ici Troubadour."}
_VOICE_ACK = {"en": "Press 1 to acknowledge this message.", "fr": "Appuyez sur 1 pour confirmer la réception de ce message."}
_VOICE_REPEAT = {"en": "I repeat.", "fr": "Je répète."}

_EMAIL_HTML = (
    '<div style="font-family: Arial, Helvetica, sans-serif; max-width: 560px; margin: 0 auto; color: #1f2937;">'
    '<h1 style="font-size: 20px; margin: 0 0 12px;">{title}</h1>'
    '<p style="font-size: 15px; line-height: 1.5; margin: 0 0 20px;">{body}</p>'
    "{{% if {link} %}}"
    '<p style="margin: 0 0 24px;"><a href="{{{{ {link} }}}}" style="display: inline-block; padding: 10px 18px; '
    'background: #4f46e5; color: #ffffff; text-decoration: none; border-radius: 6px;">{action}</a></p>'
    "{{% endif %}}"
    '<p style="font-size: 12px; color: #6b7280; margin: 0;">{footer}</p>'
    "</div>"
)


def _html_footer(footer: str) -> str:
    # In HTML the stop link is a link (str.format does not touch the braces of a value).
    return footer.replace("{{ invite.stop_url }}", '<a href="{{ invite.stop_url }}" style="color: #6b7280;">{{ invite.stop_url }}</a>')


def _needs_acknowledgment(event: EventDefinition) -> bool:
    return Criticality.at_least(event.criticality, Criticality.HIGH)


def channel_content(event: EventDefinition, channel: str, language: str) -> dict[str, str]:
    """Translated content fields of one channel in one language (subject, title, body, body_html, action_label)."""
    copy = event.copy(language)
    link = "{{ " + event.link + " }}"
    colon = " : " if language == "fr" else ": "
    link_line = "{% if " + event.link + " %}\n\n" + copy.action + colon + link + "{% endif %}"
    if channel == Channel.IN_APP:
        return {"title": copy.title, "body": copy.body, "action_label": copy.action}
    if channel == Channel.EMAIL:
        footer = event.extra.get("email_footer", _EMAIL_FOOTER)[language]
        return {
            "subject": copy.title,
            "title": copy.title,
            "body": copy.body + link_line + "\n\n-- \n" + footer,
            "body_html": _EMAIL_HTML.format(
                title=copy.title, body=copy.body, action=copy.action, link=event.link, footer=_html_footer(footer)
            ),
            "action_label": copy.action,
        }
    if channel == Channel.PUSH:
        return {"title": copy.title, "body": copy.body, "action_label": copy.action}
    if channel == Channel.SMS:
        return {"body": copy.sms + "{% if " + event.link + " %} " + link + "{% endif %}"}
    if channel == Channel.WHATSAPP:
        return {"title": copy.title, "body": "*" + copy.title + "*\n" + copy.body + "{% if " + event.link + " %}\n" + link + "{% endif %}", "action_label": copy.action}
    if channel == Channel.VOICE:
        message = copy.voice
        script = f"{_VOICE_GREETING[language]} {message} {_VOICE_REPEAT[language]} {message}"
        if _needs_acknowledgment(event):
            script += " " + _VOICE_ACK[language]
        return {"body": script}
    raise ValueError(f"unknown channel {channel}")


def channel_options(event: EventDefinition, channel: str) -> tuple[str, dict[str, Any]]:
    """(action_url template, extra options) of one channel; not translated."""
    link = "{{ " + event.link + " }}"
    if channel == Channel.WHATSAPP:
        # Business-initiated WhatsApp messages need a pre-approved template of this name in each
        # language; the body parameters fill its {{1}}, {{2}}… placeholders in order.
        names = list(event.variables)[:3]
        return link, {
            "template_name": "troubadour_" + event.key.replace(".", "_"),
            "body_parameters": ["{{ " + name + " }}" for name in names] + [link],
        }
    if channel == Channel.VOICE:
        ack = _needs_acknowledgment(event)
        return "", {"require_acknowledgment": ack, "acknowledgment_digit": "1" if ack else "", "max_retries": 2 if ack else 0}
    if channel == Channel.PUSH:
        return link, {"require_interaction": event.criticality == Criticality.CRITICAL}
    if channel == Channel.SMS:
        return link, {"max_segments": 2}
    return link, {}


# --- loading ------------------------------------------------------------------------------------


@dataclass
class CatalogLoadResult:
    event_types_created: int = 0
    event_types_updated: int = 0
    templates_created: int = 0
    templates_updated: int = 0
    channels_created: int = 0
    channels_updated: int = 0

    def __str__(self) -> str:
        return (
            f"event types: {self.event_types_created} created, {self.event_types_updated} updated; "
            f"templates: {self.templates_created} created, {self.templates_updated} updated; "
            f"channel contents: {self.channels_created} created, {self.channels_updated} updated"
        )


CONTENT_FIELDS = ("subject", "title", "body", "body_html", "action_label")


def _event_type_values(event: EventDefinition) -> dict[str, Any]:
    return {
        "name": event.name,
        "description": event.description,
        "category": str(event.category),
        "default_criticality": str(event.criticality),
        "default_channels": event.default_channels,
        "allowed_channels": event.allowed_channels,
        "variable_mapping": dict(event.variables),
        "default_template_key": event.key,
        "recipients_hint": event.recipients,
        "is_active": True,
    }


def _template_values(event: EventDefinition) -> dict[str, Any]:
    return {
        "event_type": event.key,
        "name": event.name,
        "description": f"Platform default for {event.key}.",
        "default_criticality": str(event.criticality),
        "variables": sorted(event.variables),
        "is_active": True,
        "is_default": True,
    }


def _channel_values(event: EventDefinition, channel: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for language in LANGUAGES:
        content = channel_content(event, channel, language)
        for name in CONTENT_FIELDS:
            values[f"{name}_{language}"] = content.get(name, "")
    # The untranslated column mirrors the default language (modeltranslation reads the
    # per-language columns; the original one matters only to code that bypasses it).
    for name in CONTENT_FIELDS:
        values[name] = values[f"{name}_en"]
    values["action_url"], values["extra"] = channel_options(event, channel)
    return values


def catalog_load(*, update: bool = False, models: Any = None) -> CatalogLoadResult:
    """Write the shipped event types and global default templates; idempotent.

    Missing rows are created; existing ones are left as operators edited them unless
    `update` is true, which resets them to the shipped content. `models` lets a data
    migration pass its historical models (an object with EventType, NotificationTemplate and
    TemplateChannel attributes). A fixed number of queries, whatever the catalog size.
    """
    if models is None:
        from . import models as live_models

        models = live_models
    EventType, Template, TemplateChannel = models.EventType, models.NotificationTemplate, models.TemplateChannel
    result = CatalogLoadResult()

    existing_types = {et.key: et for et in EventType.objects.filter(key__in=EVENTS_BY_KEY)}
    new_types = [EventType(key=e.key, **_event_type_values(e)) for e in EVENTS if e.key not in existing_types]
    EventType.objects.bulk_create(new_types, ignore_conflicts=True)
    result.event_types_created = len(new_types)
    if update and existing_types:
        for key, row in existing_types.items():
            for attr, value in _event_type_values(EVENTS_BY_KEY[key]).items():
                setattr(row, attr, value)
        EventType.objects.bulk_update(list(existing_types.values()), list(_event_type_values(EVENTS[0])))
        result.event_types_updated = len(existing_types)

    existing_templates = {t.key: t for t in Template.objects.filter(organization__isnull=True, key__in=EVENTS_BY_KEY)}
    new_templates = [Template(key=e.key, **_template_values(e)) for e in EVENTS if e.key not in existing_templates]
    Template.objects.bulk_create(new_templates, ignore_conflicts=True)
    result.templates_created = len(new_templates)
    templates = {t.key: t for t in Template.objects.filter(organization__isnull=True, key__in=EVENTS_BY_KEY)}
    if update and existing_templates:
        for key, row in existing_templates.items():
            for attr, value in _template_values(EVENTS_BY_KEY[key]).items():
                setattr(row, attr, value)
            row.version += 1
        Template.objects.bulk_update(list(existing_templates.values()), [*_template_values(EVENTS[0]), "version"])
        result.templates_updated = len(existing_templates)

    existing_channels = {
        (tc.template_id, tc.channel): tc for tc in TemplateChannel.objects.filter(template__in=list(templates.values()))
    }
    new_channels = []
    changed_channels = []
    for event in EVENTS:
        template = templates[event.key]
        for channel in ALL_CHANNELS:
            values = _channel_values(event, channel)
            row = existing_channels.get((template.pk, str(channel)))
            if row is None:
                new_channels.append(TemplateChannel(template_id=template.pk, channel=str(channel), **values))
            elif update:
                for attr, value in values.items():
                    # Through the model's own attribute dict: with modeltranslation registered,
                    # setattr on the untranslated name would write the active language instead.
                    row.__dict__[attr] = value
                changed_channels.append(row)
    TemplateChannel.objects.bulk_create(new_channels, ignore_conflicts=True)
    result.channels_created = len(new_channels)
    if changed_channels:
        TemplateChannel.objects.bulk_update(changed_channels, list(_channel_values(EVENTS[0], Channel.IN_APP)))
        result.channels_updated = len(changed_channels)
    if new_types or new_templates or new_channels or update:
        from .engine.config_memo import config_changed

        config_changed()  # written in bulk, without signals: every process reads the catalogue again
    return result


def content_digest(text: str) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def shipped_content_upgrade(*, models: Any, key: str, channel: str, previous: dict[str, str]) -> list[str]:
    """Bring the global template `key`/`channel` to the shipped content, column by column, only
    where the column still holds what was shipped before: `previous` maps a translated column
    (``body_en``, ``body_html_fr``…) to the sha256 of its former shipped value. A column an
    operator edited is left as it is. Returns the columns written.

    Data migrations that change shipped copy call this with the digests of the old copy frozen
    in the migration, so a migration never overwrites what an operator wrote.
    """
    TemplateChannel = models.TemplateChannel
    row = TemplateChannel.objects.filter(template__key=key, template__organization__isnull=True, channel=channel).first()
    if row is None:
        return []
    event = EVENTS_BY_KEY[key]
    content = {language: channel_content(event, channel, language) for language in LANGUAGES}
    changes: dict[str, str] = {}
    for column, digest in previous.items():
        name, _, language = column.rpartition("_")
        shipped = content[language].get(name, "")
        current = row.__dict__[column]  # the column itself, past modeltranslation's descriptor
        if content_digest(current) == digest and current != shipped:
            changes[column] = shipped
    # The untranslated column mirrors the default language; it follows when that one does.
    for name in CONTENT_FIELDS:
        if f"{name}_en" in changes and content_digest(row.__dict__[name]) == previous.get(f"{name}_en"):
            changes[name] = changes[f"{name}_en"]
    if changes:
        rows = TemplateChannel.objects.filter(pk=row.pk)
        # The live model's queryset would turn `body` into the active language's column.
        rows = rows.rewrite(False) if hasattr(rows, "rewrite") else rows
        rows.update(**changes)
    return sorted(changes)

"""Template editing: create, change, restore, preview and test-send, with a version history.

The one implementation behind both the template API (`notifications/api/templates.py`) and
the staff console's template editor: every write validates the content in the rendering
sandbox, bumps `NotificationTemplate.version`, stores the new state as a `TemplateVersion`
and writes one audit row. A restore is a change like any other (it becomes a new version),
so the history never loses the state it replaced.

Content travels as a snapshot dict — `template_snapshot()` — whose `channels` are
``[{"channel", "content": {lang: {field: text}}, "action_url", "extra"}]``.
"""
from __future__ import annotations

import difflib
import json
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from modeltranslation.utils import build_localized_fieldname

from common.exceptions import ValidationError
from common.links import html_links_sanitize, link_safe_or_empty, template_link_problem
from notifications.engine import rendering
from notifications.engine.channel_options import template_extra_clean
from notifications.enums import AuditAction, AuditActorType, Channel
from notifications.models import EventType, NotificationAuditLog, NotificationTemplate, TemplateChannel, TemplateVersion

LANGUAGE_CODES = [code for code, _ in settings.LANGUAGES]
TEMPLATE_FIELDS = ("name", "description", "default_criticality", "is_active")


# --- snapshots ---------------------------------------------------------------------------


def template_channel_snapshot(block: TemplateChannel) -> dict[str, Any]:
    content = {
        lang: {name: getattr(block, build_localized_fieldname(name, lang), "") or "" for name in rendering.CONTENT_FIELDS}
        for lang in LANGUAGE_CODES
    }
    return {"channel": block.channel, "content": content, "action_url": block.action_url, "extra": block.extra or {}}


def template_snapshot(template: NotificationTemplate) -> dict[str, Any]:
    """The editable state of a template: its fields and every channel in every language."""
    return {
        "event_type": template.event_type,
        **{name: getattr(template, name) for name in TEMPLATE_FIELDS},
        "channels": [template_channel_snapshot(block) for block in template.channels.all().order_by("channel")],
    }


def _version_record(*, template: NotificationTemplate, user: Any, note: str = "") -> TemplateVersion:
    template = NotificationTemplate.objects.prefetch_related("channels").get(pk=template.pk)
    version, _created = TemplateVersion.objects.update_or_create(
        template=template, version=template.version,
        defaults={"content": template_snapshot(template), "note": note[:200], "created_by_id": getattr(user, "pk", None)},
    )
    return version


def _base_version_ensure(template: NotificationTemplate) -> None:
    # Templates shipped by the catalogue (or written before versions existed) have no history
    # yet: their current state becomes the first version before it is changed.
    if not TemplateVersion.objects.filter(template=template).exists():
        _version_record(template=template, user=None, note="Before the first recorded change")


def _audit(*, user: Any, template: NotificationTemplate | None, action: str, details: dict[str, Any],
           organization_id: int | None = None, source: str = "api") -> None:
    # A deletion passes template=None (the row is going away) and names its organization itself.
    NotificationAuditLog.objects.create(
        organization_id=template.organization_id if template else organization_id, template=template, action=action,
        actor_type=AuditActorType.USER, actor_id=str(user.pk), actor_label=user.get_username(),
        user_id=user.pk, details={"source": source, **details},
    )


def template_change_record(*, user: Any, template: NotificationTemplate, created: bool, changed: list[str],
                           source: str = "admin") -> None:
    """Version and audit a change written by a stock admin form (the add form, the channel page)."""
    if not created:
        NotificationTemplate.objects.filter(pk=template.pk).update(version=template.version + 1, updated_by=user)
        template.version += 1
    _version_record(template=template, user=user, note="Created" if created else "Changed: " + ", ".join(changed))
    _audit(user=user, template=template, source=source,
           action=AuditAction.TEMPLATE_CREATED if created else AuditAction.TEMPLATE_CHANGED,
           details={"key": template.key, "version": template.version, "changed": changed})


# --- validation and writes ----------------------------------------------------------------


def event_type_get(key: str) -> EventType:
    event_type = EventType.objects.filter(key=key).first()
    if event_type is None:
        raise ValidationError({"event_type": [f"Unknown event type '{key}'."]})
    return event_type


def template_allowed_variables(*, event_type: EventType) -> list[str]:
    return sorted(rendering.allowed_variables_for(event_type.variable_mapping))


def template_channels_validate(channels: list[dict[str, Any]], event_type: EventType) -> None:
    allowed = template_allowed_variables(event_type=event_type)
    contents: dict[str, dict[str, str]] = {}
    for block in channels:
        for lang, fields in block["content"].items():
            contents[f"{block['channel']}.{lang}"] = dict(fields)
        if block.get("action_url"):
            contents[f"{block['channel']}"] = {"action_url": block["action_url"]}
    link_errors = {block["channel"]: {"action_url": [problem]} for block in channels
                   if (problem := template_link_problem(block.get("action_url") or ""))}
    if link_errors:
        raise ValidationError({"channels": link_errors})
    extra_errors: dict[str, Any] = {}
    for block in channels:
        if not block.get("extra"):
            continue
        try:
            block["extra"] = template_extra_clean(block["channel"], block["extra"])
        except ValidationError as exc:
            extra_errors[block["channel"]] = exc.detail
            continue
        for key in ("header_parameters", "body_parameters", "button_parameters"):
            for index, text in enumerate(block["extra"].get(key) or []):
                contents.setdefault(f"{block['channel']}.extra", {})[f"{key}.{index}"] = text
    if extra_errors:
        raise ValidationError({"channels": extra_errors})
    rendering.template_validate(channel_contents=contents, allowed_variables=allowed)
    disallowed = [b["channel"] for b in channels if event_type.allowed_channels and b["channel"] not in event_type.allowed_channels]
    if disallowed:
        raise ValidationError({"channels": [f"Not allowed for {event_type.key}: {', '.join(disallowed)}."]})


def _channels_write(template: NotificationTemplate, channels: list[dict[str, Any]]) -> None:
    TemplateChannel.objects.filter(template=template).exclude(channel__in=[b["channel"] for b in channels]).delete()
    existing = {b.channel: b for b in TemplateChannel.objects.filter(template=template)}
    for block in channels:
        row = existing.get(block["channel"]) or TemplateChannel(template=template, channel=block["channel"])
        for lang in LANGUAGE_CODES:
            fields = block["content"].get(lang) or {}
            for name in rendering.CONTENT_FIELDS:
                setattr(row, build_localized_fieldname(name, lang), fields.get(name, "") or "")
        row.action_url = block.get("action_url", "") or ""
        row.extra = block.get("extra") or {}
        row.save()


@transaction.atomic
def template_create(*, user: Any, organization: Any, platform_admin: bool, data: dict[str, Any]) -> NotificationTemplate:
    event_type = event_type_get(data["event_type"])
    template_channels_validate(data["channels"], event_type)
    scope_global = platform_admin and data.get("scope") == "GLOBAL"
    if organization is None and not scope_global:
        raise ValidationError({"detail": "No organization to create the template for."})
    key = data.get("key") or event_type.template_key
    owner = None if scope_global else organization
    if NotificationTemplate.objects.filter(key=key, organization=owner).exists():
        raise ValidationError({"key": [f"A template '{key}' already exists here; update it instead."]})
    template = NotificationTemplate.objects.create(
        key=key, event_type=event_type.key, name=data["name"], description=data.get("description", ""),
        organization=owner, default_criticality=data.get("default_criticality") or event_type.default_criticality,
        is_active=data.get("is_active", True), variables=template_allowed_variables(event_type=event_type),
        created_by_id=user.pk, updated_by_id=user.pk,
    )
    _channels_write(template, data["channels"])
    _version_record(template=template, user=user, note="Created")
    _audit(user=user, template=template, action=AuditAction.TEMPLATE_CREATED, details={"key": key})
    return template


@transaction.atomic
def template_update(*, user: Any, template: NotificationTemplate, data: dict[str, Any], partial: bool,
                    note: str = "", source: str = "api") -> NotificationTemplate:
    template = NotificationTemplate.objects.select_for_update().get(pk=template.pk)
    event_type = event_type_get(data.get("event_type", template.event_type))
    if "channels" in data:
        template_channels_validate(data["channels"], event_type)
    elif not partial:
        raise ValidationError({"channels": ["This field is required."]})
    _base_version_ensure(template)
    for name in TEMPLATE_FIELDS:
        if name in data:
            setattr(template, name, data[name])
    template.event_type = event_type.key
    template.variables = template_allowed_variables(event_type=event_type)
    template.version += 1
    template.updated_by_id = user.pk
    template.save()
    if "channels" in data:
        _channels_write(template, data["channels"])
    fields = sorted(k for k in data if k != "scope")
    _version_record(template=template, user=user, note=note or "Changed: " + ", ".join(fields))
    details: dict[str, Any] = {"version": template.version, "fields": fields}
    if note:
        details["note"] = note
    _audit(user=user, template=template, action=AuditAction.TEMPLATE_CHANGED, details=details, source=source)
    return template


def template_restore(*, user: Any, template: NotificationTemplate, version: int, source: str = "admin") -> NotificationTemplate:
    """Bring back the content of an older version, as a new version (validated like any change)."""
    stored = TemplateVersion.objects.filter(template=template, version=version).first()
    if stored is None:
        raise ValidationError({"version": [f"This template has no version {version}."]})
    data = {key: value for key, value in stored.content.items() if key in (*TEMPLATE_FIELDS, "event_type", "channels")}
    return template_update(user=user, template=template, data=data, partial=False, note=f"Restored version {version}",
                           source=source)


@transaction.atomic
def template_delete(*, user: Any, template: NotificationTemplate, source: str = "api") -> None:
    _audit(user=user, template=None, action=AuditAction.TEMPLATE_DELETED, organization_id=template.organization_id,
           source=source, details={"key": template.key, "template_id": template.pk, "organization_id": template.organization_id})
    template.delete()


# --- history ------------------------------------------------------------------------------


def template_versions(*, template: NotificationTemplate) -> QuerySet[TemplateVersion]:
    return TemplateVersion.objects.filter(template=template).select_related("created_by").order_by("-version")


def _snapshot_lines(content: dict[str, Any]) -> list[str]:
    # One line per field and language, so a diff points at the exact text that changed.
    lines = [f"{name}: {content.get(name, '')}" for name in ("event_type", *TEMPLATE_FIELDS)]
    for block in content.get("channels", []):
        for lang in LANGUAGE_CODES:
            for name in rendering.CONTENT_FIELDS:
                text = (block["content"].get(lang) or {}).get(name) or ""
                if text:
                    lines.extend(f"{block['channel']}.{lang}.{name}: {line}" for line in text.splitlines() or [""])
        if block.get("action_url"):
            lines.append(f"{block['channel']}.action_url: {block['action_url']}")
        if block.get("extra"):
            lines.append(f"{block['channel']}.extra: {json.dumps(block['extra'], sort_keys=True, ensure_ascii=False)}")
    return lines


def template_version_diff(*, older: dict[str, Any] | None, newer: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(kind, line)]`` with kind "+", "-", " " or "@": what changed from ``older`` to ``newer``."""
    diff = difflib.unified_diff(_snapshot_lines(older or {}), _snapshot_lines(newer), lineterm="", n=1)
    rows: list[tuple[str, str]] = []
    for line in diff:
        if line.startswith(("---", "+++")):
            continue
        kind = "@" if line.startswith("@@") else line[:1]
        rows.append((kind, line[1:] if kind != "@" else line))
    return rows


# --- preview and test-send ----------------------------------------------------------------

_SAMPLE_BY_LEAF = {
    "name": "Alex Martin", "title": "Prepare the quarterly report", "project": "Website relaunch",
    "url": f"{settings.SITE_URL}/inbox/", "id": "4711", "count": "3", "date": "2026-03-14", "due": "2026-03-14",
    "time": "09:30", "amount": "42.00", "status": "in progress", "message": "Looks good to me, merging after lunch.",
    "excerpt": "Looks good to me, merging after lunch.", "comment": "Looks good to me, merging after lunch.",
    "severity": "high", "priority": "high", "email": "alex@example.com", "code": "483920",
}


def template_sample_variables(*, event_type_key: str) -> dict[str, str]:
    """Plausible values for every variable of an event type, for previews: chosen by the
    variable's last part ("task.title" → a task title), else the variable's own name."""
    event_type = EventType.objects.filter(key=event_type_key).first()
    names = sorted((event_type.variable_mapping or {}) if event_type else {})
    sample = {}
    for name in names:
        leaf = name.rsplit(".", 1)[-1].lower()
        value = next((v for k, v in _SAMPLE_BY_LEAF.items() if leaf == k or leaf.endswith(k)), None)
        sample[name] = value or name.replace(".", " ").replace("_", " ").capitalize()
    return sample


def _block_namespace(block: dict[str, Any]) -> SimpleNamespace:
    # The engine reads a channel's content through `template_channel_contents` (locale and
    # English fallback): an unsaved block is given the same shape so the preview runs that code.
    fields: dict[str, str] = {}
    for name in rendering.CONTENT_FIELDS:
        fields[name] = ""
        for lang in LANGUAGE_CODES:
            fields[build_localized_fieldname(name, lang)] = (block["content"].get(lang) or {}).get(name) or ""
    return SimpleNamespace(**fields)


def template_preview_channels(*, event_type_key: str, channels: list[dict[str, Any]], channel: str | None,
                              locale: str | None, variables: dict[str, Any] | None, recipient_name: str,
                              organization_name: str) -> list[dict[str, Any]]:
    """Render channel blocks with sample values: one entry per channel (SMS with its segment count)."""
    sample: dict[str, Any] = dict(template_sample_variables(event_type_key=event_type_key))
    sample.update({"recipient.name": recipient_name, "organization.name": organization_name, "actor.name": "Alex Martin",
                   "action_url": f"{settings.SITE_URL}/inbox/", "event.type": event_type_key})
    sample.update({str(k): v for k, v in (variables or {}).items()})
    context = rendering.template_context_build(variable_mapping=None, source={}, standard=sample)
    results = []
    for block in channels:
        if channel and block["channel"] != channel:
            continue
        contents = rendering.template_channel_contents(_block_namespace(block), locale=locale)
        rendered = rendering.content_render(contents=contents, context=context)
        action_url = block.get("action_url") or ""
        entry: dict[str, Any] = {
            "channel": block["channel"], "locale": rendering._language(locale),
            "subject": rendered.subject, "title": rendered.title, "body": rendered.body,
            "body_html": html_links_sanitize(rendered.body_html), "action_label": rendered.action_label,
            "action_url": link_safe_or_empty(rendering.template_render(action_url, context, html=False)) if action_url else "",
        }
        if block["channel"] in (Channel.SMS, Channel.WHATSAPP):
            entry["sms"] = rendering.sms_segments(rendered.body)
        if block["channel"] == Channel.SMS:
            # The template's max_segments refuses the preview as it would refuse the send.
            from notifications.engine.payload import PayloadError, sms_segments_check

            try:
                sms_segments_check(rendered.body, block.get("extra") or {})
            except PayloadError as exc:
                raise ValidationError({"SMS": [str(exc.detail)]}, code="too_many_segments") from None
        results.append(entry)
    if channel and not results:
        raise ValidationError({"channel": [f"This template has no {channel} content."]})
    return results


def template_preview(*, template: NotificationTemplate, channel: str | None, locale: str | None,
                     variables: dict[str, Any] | None, recipient_name: str, organization_name: str) -> list[dict[str, Any]]:
    return template_preview_channels(
        event_type_key=template.event_type, channels=template_snapshot(template)["channels"], channel=channel,
        locale=locale, variables=variables, recipient_name=recipient_name, organization_name=organization_name,
    )


def template_test_send(*, user: Any, template: NotificationTemplate, channel: str, locale: str | None,
                       variables: dict[str, Any] | None, organization: Any,
                       channels: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Render for ``user`` and send it through the channel's providers to the user's own address.

    ``channels`` (the editor's unsaved content) replaces the stored content when given.
    """
    from providers.base import OutboundMessage
    from notifications.engine.failover import send_with_failover_audit

    if channel == Channel.IN_APP:
        raise ValidationError({"channel": ["Use preview for in-app content: the inbox only holds real events."]})
    addresses: dict[str, str] = {Channel.EMAIL: user.email, Channel.SMS: user.phone, Channel.WHATSAPP: user.phone,
                                 Channel.VOICE: user.phone, Channel.PUSH: str(user.pk)}
    address = addresses.get(channel, "")
    if not address:
        raise ValidationError({"channel": [f"Your account has no address for {channel}."]})
    if channels is not None:
        template_channels_validate(channels, event_type_get(template.event_type))
    [content] = template_preview_channels(
        event_type_key=template.event_type,
        channels=channels if channels is not None else template_snapshot(template)["channels"],
        channel=channel, locale=locale or user.locale, variables=variables,
        recipient_name=user.get_display_name(), organization_name=getattr(organization, "name", ""),
    )
    message = OutboundMessage(
        channel=channel, to=address, text=content["body"], subject=f"[Test] {content['subject'] or content['title']}",
        html=content["body_html"], title=content["title"], locale=content["locale"], action_url=content["action_url"],
        data={"template_id": str(template.pk), "test": "true"},
        metadata={"template_id": template.pk, "test": True},
    )
    outcome = send_with_failover_audit(organization_id=getattr(organization, "pk", None), channel=channel, message=message)
    result = getattr(outcome, "result", outcome)
    return {
        "channel": channel,
        "to": address,
        "provider": getattr(outcome, "provider_code", "") or getattr(outcome, "provider", ""),
        "provider_message_id": getattr(result, "provider_message_id", ""),
        "rendered": content,
    }

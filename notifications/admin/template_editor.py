"""The template editor of the staff console: the change page of a notification template.

One locale per tab, one block per channel, a live preview beside the form (rendered by the
engine's own code with the event type's sample data: SMS segment count, email HTML in a
sandboxed frame), a test-send to the operator's own address, and the version history with
each version's diff and a restore button. Every write goes through
`notifications.engine.templates` — the service the template API calls — so the console and
the API version, validate and audit a change the same way.

The page's script (static/admin_console/template_editor.js) only fetches the preview and the
test-send; without it the form still saves.
"""
from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from unfold.admin import ModelAdmin

from accounts.selectors import request_user
from common.admin import ReadOnlyAdminMixin
from common.exceptions import ProviderError, TroubadourError, ValidationError
from notifications.engine import rendering
from notifications.engine import templates as template_service
from notifications.enums import Channel, Criticality
from notifications.models import EventType, NotificationTemplate, TemplateVersion

FIELD_LABELS = {"subject": "Subject", "title": "Title", "body": "Text", "body_html": "HTML", "action_label": "Button label"}
# The fields each channel actually shows; the others stay hidden (and empty) for that channel.
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    Channel.EMAIL: ("subject", "title", "body", "body_html", "action_label"),
    Channel.IN_APP: ("title", "body", "action_label"),
    Channel.PUSH: ("title", "body"),
    Channel.SMS: ("body",),
    Channel.WHATSAPP: ("body",),
    Channel.VOICE: ("body",),
}
MULTILINE = {"body", "body_html"}
HISTORY_SHOWN = 20


# --- the form, read and written by hand (the content is a nested structure) ----------------


def _field_name(channel: str, lang: str, name: str) -> str:
    return f"{channel}__{lang}__{name}"


def editor_data_from_post(post: Any) -> dict[str, Any]:
    """The service's data dict from the editor's POST; a channel whose texts are all empty is dropped."""
    channels = []
    for channel in Channel.values:
        content = {
            lang: {name: post.get(_field_name(channel, lang, name), "") for name in rendering.CONTENT_FIELDS}
            for lang in template_service.LANGUAGE_CODES
        }
        if not any(text.strip() for fields in content.values() for text in fields.values()):
            continue
        extra_text = (post.get(f"{channel}__extra") or "").strip()
        try:
            extra = json.loads(extra_text) if extra_text else {}
        except ValueError:
            raise ValidationError({f"{channel}.extra": ["Not valid JSON."]}) from None
        if not isinstance(extra, dict):
            raise ValidationError({f"{channel}.extra": ["Must be a JSON object."]})
        channels.append({"channel": channel, "content": content, "action_url": post.get(f"{channel}__action_url", ""),
                         "extra": extra})
    if not channels:
        raise ValidationError({"channels": ["At least one channel needs content."]})
    return {
        "name": post.get("name", "").strip(),
        "description": post.get("description", ""),
        "default_criticality": post.get("default_criticality") or Criticality.MEDIUM,
        "is_active": post.get("is_active") == "on",
        "channels": channels,
    }


def _blocks(template: NotificationTemplate, state: dict[str, Any]) -> list[dict[str, Any]]:
    event_type = EventType.objects.filter(key=template.event_type).first()
    allowed = list(event_type.allowed_channels) if event_type and event_type.allowed_channels else list(Channel.values)
    present = {block["channel"]: block for block in state.get("channels", [])}
    order = [c for c in Channel.values if c in present] + [c for c in Channel.values if c in allowed and c not in present]
    blocks = []
    for channel in order:
        block = present.get(channel) or {"content": {}, "action_url": "", "extra": {}}
        shown = CHANNEL_FIELDS.get(channel, rendering.CONTENT_FIELDS)
        langs = []
        for lang, label in _languages():
            values = block["content"].get(lang) or {}
            langs.append({"code": lang, "label": label, "fields": [
                {"name": _field_name(channel, lang, name), "label": FIELD_LABELS[name], "value": values.get(name, ""),
                 "multiline": name in MULTILINE, "hidden": name not in shown and not values.get(name)}
                for name in rendering.CONTENT_FIELDS
            ]})
        blocks.append({
            "channel": channel, "label": Channel(channel).label, "present": channel in present, "langs": langs,
            "action_url": block.get("action_url", ""),
            "extra": json.dumps(block["extra"], indent=2, ensure_ascii=False) if block.get("extra") else "",
            "test_send": channel != Channel.IN_APP,
        })
    return blocks


def _languages() -> list[tuple[str, str]]:
    from django.conf import settings

    return [(code, str(label)) for code, label in settings.LANGUAGES]


def _history(template: NotificationTemplate) -> list[dict[str, Any]]:
    versions = list(template_service.template_versions(template=template)[: HISTORY_SHOWN + 1])
    rows = []
    for index, version in enumerate(versions[:HISTORY_SHOWN]):
        older = versions[index + 1].content if index + 1 < len(versions) else None
        rows.append({"version": version, "current": version.version == template.version,
                     "changes": template_service.template_version_diff(older=older, newer=version.content)})
    return rows


def _errors(exc: TroubadourError) -> list[str]:
    detail = getattr(exc, "detail", str(exc))
    if isinstance(detail, dict):
        return [f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}" for field, msgs in detail.items()]
    return [str(detail)]


# --- the admin --------------------------------------------------------------------------------


class TemplateEditorMixin:
    """Makes a template's change page the editor; the add page stays the stock form (then the editor)."""

    editor_template = "admin/notifications/template_editor.html"

    def get_urls(self):
        urls = super().get_urls()  # type: ignore[misc]
        wrap = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("<int:object_id>/editor/preview/", wrap(self.editor_preview), name="notifications_template_preview"),
            path("<int:object_id>/editor/test-send/", wrap(self.editor_test_send), name="notifications_template_test_send"),
            path("<int:object_id>/versions/<int:version>/restore/", wrap(self.editor_restore),
                 name="notifications_template_restore"),
            *urls,
        ]

    def response_add(self, request: HttpRequest, obj: NotificationTemplate, post_url_continue: str | None = None) -> HttpResponse:
        # The content is written in the editor: go there whichever save button was pressed.
        return HttpResponseRedirect(reverse("admin:notifications_notificationtemplate_change", args=[obj.pk]))

    def _editable(self, request: HttpRequest, object_id: Any) -> NotificationTemplate:
        template = get_object_or_404(NotificationTemplate.objects.select_related("organization"), pk=object_id)
        if not self.has_change_permission(request, template):  # type: ignore[attr-defined]
            raise DjangoPermissionDenied
        return template

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        template = self._editable(request, object_id)
        state = template_service.template_snapshot(template)
        errors: list[str] = []
        if request.method == "POST":
            try:
                data = editor_data_from_post(request.POST)
                state = {**state, **data}
                template_service.template_update(user=request.user, template=template, data=data, partial=False,
                                                 source="admin")
            except ValidationError as exc:
                errors = _errors(exc)
            else:
                template.refresh_from_db()
                messages.success(request, f"Saved {template.key} as version {template.version}.")
                return HttpResponseRedirect(request.path)
        opts = NotificationTemplate._meta
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": opts, "original": template, "title": f"Edit template {template.key}",
            "template_obj": template, "state": state, "errors": errors, "blocks": _blocks(template, state),
            "languages": _languages(), "criticalities": Criticality.choices, "history": _history(template),
            "sample": json.dumps(template_service.template_sample_variables(event_type_key=template.event_type), indent=2,
                                 ensure_ascii=False),
            "preview_url": reverse("admin:notifications_template_preview", args=[template.pk]),
            "test_send_url": reverse("admin:notifications_template_test_send", args=[template.pk]),
            "operator_email": request_user(request).email, "operator_phone": request_user(request).phone,
            "has_delete_permission": self.has_delete_permission(request, template),  # type: ignore[attr-defined]
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.editor_template, context, status=400 if errors else 200)

    def _sample(self, request: HttpRequest) -> dict[str, Any]:
        text = (request.POST.get("sample") or "").strip()
        try:
            sample = json.loads(text) if text else {}
        except ValueError:
            raise ValidationError({"sample": ["Sample data is not valid JSON."]}) from None
        if not isinstance(sample, dict):
            raise ValidationError({"sample": ["Sample data must be a JSON object."]})
        return sample

    def editor_preview(self, request: HttpRequest, object_id: int) -> JsonResponse:
        template = self._editable(request, object_id)
        refused = self._post_only(request)
        if refused:
            return refused
        try:
            data = editor_data_from_post(request.POST)
            template_service.template_channels_validate(data["channels"], template_service.event_type_get(template.event_type))
            channels = template_service.template_preview_channels(
                event_type_key=template.event_type, channels=data["channels"], channel=None,
                locale=request.POST.get("preview_locale"), variables=self._sample(request),
                recipient_name=request_user(request).get_full_name() or request_user(request).get_username(),
                organization_name=template.organization.name if template.organization else "Example organization",
            )
        except ValidationError as exc:
            return JsonResponse({"errors": _errors(exc)}, status=400)
        return JsonResponse({"channels": channels})

    @staticmethod
    def _post_only(request: HttpRequest) -> JsonResponse | None:
        return None if request.method == "POST" else JsonResponse({"errors": ["POST the editor's form."]}, status=405)

    def editor_test_send(self, request: HttpRequest, object_id: int) -> JsonResponse:
        template = self._editable(request, object_id)
        refused = self._post_only(request)
        if refused:
            return refused
        try:
            data = editor_data_from_post(request.POST)
            result = template_service.template_test_send(
                user=request.user, template=template, channel=request.POST.get("test_channel", ""),
                locale=request.POST.get("preview_locale"), variables=self._sample(request),
                organization=template.organization, channels=data["channels"],
            )
        except ValidationError as exc:
            return JsonResponse({"errors": _errors(exc)}, status=400)
        except ProviderError as exc:
            return JsonResponse({"errors": [f"No provider accepted the message: {exc}"]}, status=502)
        return JsonResponse({"to": result["to"], "provider": result["provider"],
                             "provider_message_id": result["provider_message_id"], "channel": result["channel"]})

    def editor_restore(self, request: HttpRequest, object_id: int, version: int) -> HttpResponse:
        template = self._editable(request, object_id)
        change_url = reverse("admin:notifications_notificationtemplate_change", args=[template.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        try:
            template = template_service.template_restore(user=request.user, template=template, version=version)
        except ValidationError as exc:
            messages.error(request, " ".join(_errors(exc)))
        else:
            messages.success(request, f"Restored version {version} as version {template.version}.")
        return HttpResponseRedirect(change_url)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Stored states of templates: written by every change, read in the template editor."""

    list_display = ("template", "version", "note", "created_by", "created_at")
    list_select_related = ("template", "template__organization", "created_by")
    search_fields = ("template__key", "note")
    readonly_fields = ("template", "version", "note", "created_by", "created_at", "content")

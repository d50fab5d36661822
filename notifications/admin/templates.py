"""Event types, templates and their channel contents in the staff console (versioned and
audited through notifications.engine.templates, as the API does)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from modeltranslation.admin import TabbedTranslationAdmin
from unfold.admin import ModelAdmin


from .template_editor import TemplateEditorMixin
from ..engine.templates import template_change_record, template_delete
from ..models import (
    EventType,
    NotificationTemplate,
    TemplateChannel,
)


# --- taxonomy ----------------------------------------------------------------------------


@admin.register(EventType)
class EventTypeAdmin(ModelAdmin):
    list_display = ("key", "name", "category", "default_criticality", "default_channels", "allowed_channels", "is_active")
    list_filter = ("category", "default_criticality", "is_active")
    search_fields = ("key", "name", "description")
    list_editable = ("is_active",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("key", "name", "description", "category", "recipients_hint", "is_active")}),
        ("Routing defaults", {"fields": ("default_criticality", "default_channels", "allowed_channels")}),
        ("Templates", {"fields": ("default_template_key", "variable_mapping")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )


# --- templates ---------------------------------------------------------------------------


def _allowed_variables(*, event_type: str, declared: list[str] | None) -> frozenset[str]:
    from ..engine.rendering import allowed_variables_for

    mapping = EventType.objects.filter(key=event_type).values_list("variable_mapping", flat=True).first()
    if mapping is None:
        # An event type outside the taxonomy: the template's own declaration is the contract.
        mapping = {name: name for name in declared or []}
    return allowed_variables_for(mapping)


def _translated_contents(cleaned: dict[str, Any]) -> dict[str, str]:
    from django.conf import settings

    from ..engine.rendering import CONTENT_FIELDS

    contents: dict[str, str] = {}
    for name in CONTENT_FIELDS:
        for code, _label in settings.LANGUAGES:
            value = cleaned.get(f"{name}_{code}")
            if value:
                contents[f"{name}_{code}"] = value
    return contents


def _validation_messages(exc) -> list[str]:
    detail = exc.detail
    if isinstance(detail, dict):
        return [f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}" for field, msgs in detail.items()]
    return [str(detail)]


class TemplateScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return (("global", "Platform default"), ("organization", "Organization override"))

    def queryset(self, request, queryset):
        if self.value() == "global":
            return queryset.filter(organization__isnull=True)
        if self.value() == "organization":
            return queryset.filter(organization__isnull=False)
        return queryset


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(TemplateEditorMixin, ModelAdmin):
    """The list and the add form; a template's change page is the editor (admin_template_editor)."""

    list_display = ("key", "name", "event_type", "organization", "channel_list", "version", "is_active", "is_default", "updated_at")
    list_filter = (TemplateScopeFilter, "is_active", "is_default", "default_criticality")
    search_fields = ("key", "name", "event_type", "organization__name")
    autocomplete_fields = ("organization",)
    fieldsets = (
        (None, {"fields": ("key", "event_type", "name", "description", "organization", "default_criticality")}),
        ("Content", {"fields": ("variables", "is_active", "is_default")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organization").prefetch_related("channels")

    @admin.display(description="channels")
    def channel_list(self, obj: NotificationTemplate) -> str:
        return ", ".join(channel.channel for channel in obj.channels.all())

    def save_model(self, request, obj, form, change):
        obj.created_by = request.user
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        template_change_record(user=request.user, template=form.instance, created=True, changed=list(form.changed_data))

    def delete_model(self, request, obj):
        template_delete(user=request.user, template=obj, source="admin")


class TemplateChannelForm(forms.ModelForm):
    class Meta:
        model = TemplateChannel
        fields = "__all__"

    def clean(self):
        cleaned = super().clean() or {}
        template = cleaned.get("template")
        if template is not None:
            from common.exceptions import ValidationError as DomainValidationError

            from ..engine.rendering import template_validate

            from ..engine.channel_options import template_extra_clean

            contents: dict[str, Any] = _translated_contents(cleaned)
            if cleaned.get("channel") and cleaned.get("extra"):
                # The channel's options, checked by the service the API and the editor save them with.
                try:
                    cleaned["extra"] = template_extra_clean(cleaned["channel"], cleaned["extra"])
                except DomainValidationError as exc:
                    self.add_error("extra", _validation_messages(exc))
                    return cleaned
                contents.update({f"extra.{key}.{index}": text for key in ("header_parameters", "body_parameters", "button_parameters")
                                 for index, text in enumerate(cleaned["extra"].get(key) or [])})
            allowed = _allowed_variables(event_type=template.event_type, declared=template.variables)
            try:
                template_validate(channel_contents=contents, allowed_variables=allowed)
            except DomainValidationError as exc:
                raise forms.ValidationError(_validation_messages(exc)) from None
        return cleaned


@admin.register(TemplateChannel)
class TemplateChannelAdmin(ModelAdmin, TabbedTranslationAdmin):
    form = TemplateChannelForm
    list_display = ("template", "channel", "title", "subject")
    list_filter = ("channel", "template__is_active")
    search_fields = ("template__key", "template__event_type", "title", "subject", "body")
    list_select_related = ("template", "template__organization")
    autocomplete_fields = ("template",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        template_change_record(user=request.user, template=obj.template, created=False,
                               changed=[f"{obj.channel}.{name}" for name in form.changed_data])

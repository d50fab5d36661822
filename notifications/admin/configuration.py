"""Escalation chains, channel configuration and organization webhooks in the staff console."""
from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from common.channels import CHANNEL_DEFINITIONS

from ..enums import AuditAction
from ..models import (
    ChannelConfiguration,
    CriticalityRouting,
    EscalationChain,
    EscalationLevel,
    Webhook,
)
from .common import (
    SECRET_SET,
    SECRET_UNSET,
    _audit,
    _changed_fields,
    _encrypt_or_refuse,
)


# --- escalation ------------------------------------------------------------------------------


class EscalationLevelInline(TabularInline):
    model = EscalationLevel
    extra = 0
    autocomplete_fields = ("recipient_user",)


@admin.register(EscalationChain)
class EscalationChainAdmin(ModelAdmin):
    list_display = ("name", "organization", "trigger_criticality", "trigger_event_types", "is_active", "updated_at")
    list_filter = ("is_active", "trigger_criticality")
    search_fields = ("name", "description", "organization__name")
    autocomplete_fields = ("organization",)
    list_select_related = ("organization",)
    readonly_fields = ("created_at", "updated_at")
    inlines = [EscalationLevelInline]


@admin.register(EscalationLevel)
class EscalationLevelAdmin(ModelAdmin):
    list_display = ("chain", "level", "delay_minutes", "channels", "recipient_type", "condition")
    list_filter = ("recipient_type", "condition")
    search_fields = ("chain__name",)
    autocomplete_fields = ("chain", "recipient_user")
    list_select_related = ("chain",)


# --- providers and channel configuration --------------------------------------------------------


# NotificationProvider: providers/admin_records.py.


class CriticalityRoutingInline(TabularInline):
    model = CriticalityRouting
    extra = 0


def _detail_messages(detail: Any) -> list[str]:
    """A service ValidationError's detail as flat "key: message" lines for a form error."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            lines += [f"{key}: {line}" for line in _detail_messages(value)] if isinstance(value, (dict, list)) else [f"{key}: {value}"]
        return lines
    if isinstance(detail, list):
        return [line for item in detail for line in _detail_messages(item)]
    return [str(detail)]


class ChannelConfigurationForm(forms.ModelForm):
    """The channel's settings are checked by the service the API saves them with
    (`channel_settings_clean`: an SMS `from`, email tracking flags… like an event's options;
    the model's clean checks the selection keys): a bad value is a form error, nothing saved."""

    class Meta:
        model = ChannelConfiguration
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        from common.exceptions import ValidationError as ServiceValidationError

        from ..engine.channel_options import channel_settings_clean

        cleaned = super().clean() or {}
        channel, settings_value = cleaned.get("channel"), cleaned.get("settings")
        if channel and settings_value is not None:
            try:
                cleaned["settings"] = channel_settings_clean(channel, settings_value)
            except ServiceValidationError as exc:
                self.add_error("settings", _detail_messages(exc.detail))
        return cleaned


@admin.register(ChannelConfiguration)
class ChannelConfigurationAdmin(ModelAdmin):
    form = ChannelConfigurationForm
    list_display = ("channel", "organization", "enabled", "cost_tier", "requires_opt_in", "carries", "rate_limit_user_per_hour",
                    "rate_limit_org_per_hour", "rate_limit_action", "fallback_channels")
    list_filter = ("channel", "enabled", "rate_limit_action")
    search_fields = ("organization__name", "channel")
    autocomplete_fields = ("organization", "default_provider")
    list_select_related = ("organization",)
    readonly_fields = ("cost_tier", "requires_opt_in", "carries", "created_at", "updated_at")
    inlines = [CriticalityRoutingInline]

    # Seed 004 §4.2: what the channel is, from common.channels.CHANNEL_DEFINITIONS.
    @admin.display(description="cost tier")
    def cost_tier(self, obj) -> str:
        return CHANNEL_DEFINITIONS[obj.channel].cost_tier if obj.channel in CHANNEL_DEFINITIONS else ""

    @admin.display(description="requires opt-in", boolean=True)
    def requires_opt_in(self, obj) -> bool | None:
        return CHANNEL_DEFINITIONS[obj.channel].requires_opt_in if obj.channel in CHANNEL_DEFINITIONS else None

    @admin.display(description="carries")
    def carries(self, obj) -> str:
        d = CHANNEL_DEFINITIONS.get(obj.channel)
        if d is None:
            return ""
        kinds = [name for name, on in (("rich content", d.supports_rich_content), ("actions", d.supports_actions),
                                       ("attachments", d.supports_attachments)) if on]
        return ", ".join(kinds) or "plain text"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        changed = _changed_fields(form, formsets)
        if change and not changed:
            return
        _audit(
            request,
            action=AuditAction.CHANNEL_CONFIGURATION_CHANGED,
            organization_id=form.instance.organization_id,
            details={"configuration_id": form.instance.pk, "channel": form.instance.channel, "changed": changed, "created": not change},
        )


@admin.register(CriticalityRouting)
class CriticalityRoutingAdmin(ModelAdmin):
    list_display = ("configuration", "criticality", "enabled", "bypass_quiet_hours")
    list_filter = ("criticality", "enabled", "bypass_quiet_hours", "configuration__channel")
    search_fields = ("configuration__organization__name", "configuration__channel")
    list_select_related = ("configuration__organization",)


# --- webhooks ---------------------------------------------------------------------------------


class WebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=500, required=False, assume_scheme="https", help_text="Target URL (outgoing).")
    new_secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label="Replace secret",
        help_text="Signing secret or credential. Leave empty to keep the stored one.",
    )
    clear_secret = forms.BooleanField(required=False, label="Clear stored secret")

    class Meta:
        model = Webhook
        exclude = ("secret",)

    def clean_new_secret(self):
        value = self.cleaned_data.get("new_secret") or ""
        if value:
            self.encrypted_secret = _encrypt_or_refuse({"secret": value})
        return value

    def _post_clean(self):
        super()._post_clean()  # type: ignore[misc]  # ModelForm's own hook (after the instance is built); not in the stubs
        if self.errors:
            return
        from common.exceptions import ValidationError as DomainValidationError
        from notifications.engine.webhooks import webhook_validate

        # The rules the API applies (authenticated incoming hooks, usable outgoing URLs, known
        # event types), checked on a copy so a refused form changes nothing.
        probe = copy.copy(self.instance)
        if self.cleaned_data.get("clear_secret"):
            probe.secret = ""
        elif self.cleaned_data.get("new_secret"):
            probe.secret = self.encrypted_secret
        try:
            webhook_validate(webhook=probe)
        except DomainValidationError as exc:
            problems = exc.detail if isinstance(exc.detail, dict) else {None: [str(exc.detail)]}
            for name, messages in problems.items():
                target = name if name in self.fields else None
                if name == "secret":
                    target = "new_secret"
                self.add_error(target, messages if isinstance(messages, list) else [str(messages)])


@admin.register(Webhook)
class WebhookAdmin(ModelAdmin):
    form = WebhookForm
    list_display = ("name", "organization", "direction", "url", "auth_type", "secret_state", "is_active", "failure_count", "last_success_at")
    list_filter = ("direction", "is_active", "auth_type")
    search_fields = ("name", "description", "url", "organization__name")
    autocomplete_fields = ("organization", "created_by")
    list_select_related = ("organization",)
    readonly_fields = (
        "public_id", "incoming_path", "secret_state", "last_triggered_at", "last_success_at", "last_failure_at",
        "last_error", "failure_count", "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("organization", "name", "description", "direction", "url", "public_id", "incoming_path", "is_active")}),
        ("Authentication", {"fields": ("auth_type", "secret_state", "new_secret", "clear_secret")}),
        ("Filtering and mapping", {"fields": ("event_types", "event_categories", "settings")}),
        ("Reliability", {"fields": ("retry_enabled", "max_retries", "failure_count", "last_triggered_at", "last_success_at", "last_failure_at", "last_error")}),
        ("History", {"fields": ("created_by", "created_at", "updated_at")}),
    )

    @admin.display(description="secret")
    def secret_state(self, obj: Webhook) -> str:
        return SECRET_SET if obj is not None and obj.secret else SECRET_UNSET

    @admin.display(description="incoming URL path")
    def incoming_path(self, obj: Webhook) -> str:
        if obj is None or obj.pk is None or obj.direction != "INCOMING":
            return "—"
        return f"/webhooks/incoming/{obj.public_id}/"

    def get_readonly_fields(self, request, obj=None):
        # A webhook belongs to one organization for life (its secret and history are that tenant's).
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly + ("organization",) if obj is not None else readonly

    def save_model(self, request, obj, form, change):
        from notifications.engine import webhooks

        # Through the same services as the API: validation, encryption, audit.
        values = {k: form.cleaned_data[k] for k in webhooks.WEBHOOK_FIELDS if k in form.cleaned_data}
        secret = form.cleaned_data.get("new_secret") or None
        if change:
            saved = webhooks.webhook_update(
                webhook=obj, values=values, secret=secret, clear_secret=bool(form.cleaned_data.get("clear_secret")),
                user_id=request.user.pk, actor_label=request.user.get_username(),
            )
        else:
            saved = webhooks.webhook_create(
                organization_id=obj.organization_id, values=values, secret=secret, user_id=request.user.pk,
                actor_label=request.user.get_username(),
            )
        # The admin goes on with `obj` (messages, redirect to its page).
        for model_field in Webhook._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))
        obj._state.adding = False

    def delete_model(self, request, obj):
        from notifications.engine import webhooks

        webhooks.webhook_delete(webhook=obj, user_id=request.user.pk, actor_label=request.user.get_username())

    def delete_queryset(self, request, queryset):
        from notifications.engine import webhooks

        for webhook in queryset:
            webhooks.webhook_delete(webhook=webhook, user_id=request.user.pk, actor_label=request.user.get_username())

"""The staff console for the notification platform.

Deliveries, audit rows and idempotency records are evidence: they can be viewed, never
added or edited here. Provider and webhook secrets are never shown; an operator can only
replace or clear them.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from modeltranslation.admin import TabbedTranslationAdmin
from unfold.admin import ModelAdmin, TabularInline

from common.admin import ReadOnlyAdminMixin
from common.sealing import data_mask

from . import admin_reliability  # noqa: F401  (registers itself)
from .admin_template_editor import TemplateEditorMixin
from .engine.templates import template_change_record, template_delete
from .enums import AuditAction, AuditActorType
from .models import (
    ChannelConfiguration,
    ChannelPreference,
    CriticalityRouting,
    DeadLetter,
    EscalationChain,
    EscalationLevel,
    EventType,
    BusCommand,
    IdempotencyRecord,
    Notification,
    NotificationAuditLog,
    NotificationBatch,
    NotificationDelivery,
    NotificationPreference,
    NotificationTemplate,
    QuietHours,
    QuietHoursChannelRule,
    QuietHoursSchedule,
    TemplateChannel,
    UserPresence,
    Webhook,
)

SECRET_SET = "•••• set"
SECRET_UNSET = "not set"


# --- helpers ---------------------------------------------------------------------------


def _pretty_json(value: Any) -> str:
    value = data_mask(value)  # a sealed invitation link reads "[sealed]", never its ciphertext
    if value in (None, "", [], {}):
        return "—"
    return format_html("<pre style='white-space: pre-wrap; margin: 0'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _audit(request, *, action: str, organization_id: int | None, details: dict[str, Any] | None = None, **targets: Any) -> None:
    NotificationAuditLog.objects.create(
        organization_id=organization_id,
        action=action,
        actor_type=AuditActorType.USER,
        actor_id=str(request.user.pk),
        actor_label=request.user.get_username(),
        details={"source": "admin", **(details or {})},
        **targets,
    )


def _changed_fields(form, formsets) -> list[str]:
    changed = list(form.changed_data)
    for formset in formsets:
        for inline_form in formset.forms:
            if inline_form.has_changed():
                prefix = getattr(inline_form.instance, "channel", "") or formset.prefix
                changed.extend(f"{prefix}.{name}" for name in inline_form.changed_data)
    return changed


class _NoEchoTextarea(forms.Textarea):
    """A textarea that never renders a value back into the page (secrets stay out of HTML)."""

    def format_value(self, value: Any) -> None:
        return None


def _encrypt_or_refuse(values: dict[str, Any]) -> str:
    from django.core.exceptions import ImproperlyConfigured

    from providers.secrets import secrets_encrypt

    try:
        return secrets_encrypt(values)
    except ImproperlyConfigured:
        # Refuse rather than store a credential in clear or with a guessable key.
        raise forms.ValidationError("Secrets cannot be stored: FIELD_ENCRYPTION_KEYS is not configured.") from None


class ReadOnlyInline(TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


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
    from .engine.rendering import allowed_variables_for

    mapping = EventType.objects.filter(key=event_type).values_list("variable_mapping", flat=True).first()
    if mapping is None:
        # An event type outside the taxonomy: the template's own declaration is the contract.
        mapping = {name: name for name in declared or []}
    return allowed_variables_for(mapping)


def _translated_contents(cleaned: dict[str, Any]) -> dict[str, str]:
    from django.conf import settings

    from .engine.rendering import CONTENT_FIELDS

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
        cleaned = super().clean()
        template = cleaned.get("template")
        if template is not None:
            from common.exceptions import ValidationError as DomainValidationError

            from .engine.rendering import template_validate

            allowed = _allowed_variables(event_type=template.event_type, declared=template.variables)
            try:
                template_validate(channel_contents=_translated_contents(cleaned), allowed_variables=allowed)
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


# --- notifications and deliveries ---------------------------------------------------------


class DeliveryInline(ReadOnlyInline):
    model = NotificationDelivery
    fk_name = "notification"
    fields = ("channel", "status", "recipient_address", "provider", "attempts", "sent_at", "delivered_at", "skip_reason", "error")
    readonly_fields = fields


def _trace_table(trace: Any) -> str:
    """The routing trace as a table: one row per channel (decision, reason, the checks it went
    through), then the routing context."""
    if not isinstance(trace, dict) or not trace:
        return "—"
    rows = []
    for channel, entry in trace.items():
        if channel == "routing" or not isinstance(entry, dict):
            continue
        steps = format_html_join(
            "", "<li><strong>{}</strong>: {}{}</li>",
            ((s.get("check", "?"), s.get("result", ""), f" — {s['reason']}" if s.get("reason") else "")
             for s in entry.get("steps") or [] if isinstance(s, dict)),
        )
        rows.append(format_html(
            "<tr data-channel='{}'><td>{}</td><td><span class='console-badge decision-{}'>{}</span></td><td>{}</td>"
            "<td>{}</td><td><ul class='console-steps'>{}</ul></td></tr>",
            channel, channel, entry.get("decision", ""), entry.get("decision", ""), entry.get("reason", ""),
            entry.get("detail", "") or entry.get("hold_until", ""), steps,
        ))
    context = trace.get("routing") if isinstance(trace.get("routing"), dict) else {}
    context_rows = format_html_join(
        "", "<tr><th>{}</th><td>{}</td></tr>",
        ((key.replace("_", " "), json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (dict, list)) else value)
         for key, value in context.items() if value not in (None, "", [], {})),
    )
    return format_html(
        "<table class='console-trace' id='routing-trace'><thead><tr><th>Channel</th><th>Decision</th><th>Reason</th>"
        "<th>Detail</th><th>Checks</th></tr></thead><tbody>{}</tbody></table>"
        "<table class='console-trace' id='routing-context'><tbody>{}</tbody></table>",
        format_html_join("", "{}", ((r,) for r in rows)), context_rows,
    )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "event_type", "recipient_label", "organization", "criticality", "status", "created_at", "read_at")
    list_filter = ("status", "criticality", "category", "organization")
    search_fields = (
        "event_type", "title", "recipient__username", "recipient__email", "recipient_email", "recipient_phone",
        "=correlation_id", "=deduplication_key", "=resource_id",
    )
    list_select_related = ("recipient", "organization")
    show_full_result_count = False
    inlines = [DeliveryInline]
    fieldsets = (
        (None, {"fields": ("organization", "team", "project", "event_id", "event_type", "category", "criticality", "status")}),
        ("Recipient", {"fields": ("recipient", "recipient_email", "recipient_phone", "recipient_locale", "recipient_timezone")}),
        ("Source", {"fields": ("source_module", "actor_type", "actor_id", "actor_name", "resource_type", "resource_id", "resource_name", "correlation_id", "deduplication_key")}),
        ("Content", {"fields": ("template", "title", "body", "action_url", "action_label", "image_url", "data_pretty")}),
        ("Routing", {"fields": ("channels_requested", "channels_delivered", "trace_pretty")}),
        ("Timing", {"fields": ("scheduled_for", "expires_at", "processed_at", "completed_at", "read_at", "archived_at", "acknowledged_at", "created_at", "updated_at")}),
        ("Escalation and digest", {"fields": ("escalation_chain", "escalation_level", "next_escalation_at", "batch")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for fieldset in self.fieldsets for name in fieldset[1]["fields"]]

    @admin.display(description="recipient")
    def recipient_label(self, obj: Notification) -> str:
        return str(obj.recipient) if obj.recipient_id else (obj.recipient_email or obj.recipient_phone)

    @admin.display(description="data")
    def data_pretty(self, obj: Notification) -> str:
        return _pretty_json(obj.data)

    @admin.display(description="routing trace")
    def trace_pretty(self, obj: Notification) -> str:
        return _trace_table(obj.trace)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    actions = admin_reliability.DELIVERY_ACTIONS
    list_display = ("id", "notification_id", "channel", "status", "recipient_address", "provider", "attempts", "next_retry_at", "sent_at", "created_at")
    list_filter = ("status", "channel", "provider", ("created_at", admin.DateFieldListFilter), "organization")
    search_fields = ("recipient_address", "=provider_message_id")
    list_select_related = ("organization",)
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("notification", "organization", "channel", "status", "recipient_address", "locale", "escalation_level", "fallback_from", "batch")}),
        ("Provider", {"fields": ("provider", "provider_record", "provider_message_id", "provider_response_pretty", "cost_amount", "cost_currency")}),
        ("Attempts", {"fields": ("attempts", "max_attempts", "next_retry_at", "claimed_at", "error", "error_history_pretty", "skip_reason")}),
        ("Timing", {"fields": ("sent_at", "delivered_at", "opened_at", "clicked_at", "failed_at", "created_at", "updated_at")}),
        ("Content as sent", {"fields": ("rendered_pretty",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for fieldset in self.fieldsets for name in fieldset[1]["fields"]]

    @admin.display(description="provider response")
    def provider_response_pretty(self, obj: NotificationDelivery) -> str:
        return _pretty_json(obj.provider_response)

    @admin.display(description="error history")
    def error_history_pretty(self, obj: NotificationDelivery) -> str:
        return _pretty_json(obj.error_history)

    @admin.display(description="rendered")
    def rendered_pretty(self, obj: NotificationDelivery) -> str:
        return _pretty_json(obj.rendered)


@admin.register(NotificationBatch)
class NotificationBatchAdmin(ModelAdmin):
    list_display = ("id", "user", "organization", "channel", "frequency", "status", "window_end", "scheduled_for", "notification_count", "sent_at")
    list_filter = ("status", "channel", "frequency", "batch_type")
    search_fields = ("user__username", "user__email", "organization__name")
    autocomplete_fields = ("user", "organization")
    list_select_related = ("user", "organization")
    readonly_fields = ("created_at", "updated_at", "sent_at", "notification_count")


# --- preferences and quiet hours ----------------------------------------------------------


class ChannelPreferenceInline(TabularInline):
    model = ChannelPreference
    extra = 0
    fields = ("channel", "enabled", "only_when_offline", "digest_frequency", "digest_hour", "digest_day_of_week")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ModelAdmin):
    list_display = ("id", "level", "owner", "scope", "target", "enabled", "min_criticality", "critical_override", "locked", "updated_at")
    list_filter = ("level", "scope", "category", "enabled", "min_criticality")
    search_fields = ("event_type", "user__username", "user__email", "organization__name", "team__name", "project__name")
    autocomplete_fields = ("organization", "team", "project", "user")
    list_select_related = ("organization", "team", "project", "user")
    readonly_fields = ("created_at", "updated_at")
    inlines = [ChannelPreferenceInline]
    fieldsets = (
        ("Level", {"fields": ("level", "organization", "team", "project", "user")}),
        ("Applies to", {"fields": ("scope", "category", "event_type")}),
        ("Setting", {"fields": ("enabled", "min_criticality", "critical_override", "locked")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="owner")
    def owner(self, obj: NotificationPreference) -> str:
        return str(obj.user or obj.project or obj.team or obj.organization or "platform")

    @admin.display(description="target")
    def target(self, obj: NotificationPreference) -> str:
        return obj.event_type or obj.get_category_display() or "all events"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        changed = _changed_fields(form, formsets)
        if change and not changed:
            return
        pref = form.instance
        _audit(
            request,
            action=AuditAction.PREFERENCE_CHANGED,
            organization_id=pref.organization_id,
            user=pref.user,
            details={"preference_id": pref.pk, "level": pref.level, "scope": pref.scope, "changed": changed, "created": not change},
        )


@admin.register(ChannelPreference)
class ChannelPreferenceAdmin(ModelAdmin):
    list_display = ("id", "preference", "channel", "enabled", "only_when_offline", "digest_frequency", "digest_hour")
    list_filter = ("channel", "enabled", "only_when_offline", "digest_frequency", "preference__level")
    search_fields = ("preference__event_type", "preference__user__username", "preference__user__email", "preference__organization__name")
    autocomplete_fields = ("preference",)
    list_select_related = ("preference",)


class QuietHoursScheduleInline(TabularInline):
    model = QuietHoursSchedule
    extra = 0


class QuietHoursChannelRuleInline(TabularInline):
    model = QuietHoursChannelRule
    extra = 0


@admin.register(QuietHours)
class QuietHoursAdmin(ModelAdmin):
    list_display = ("id", "user", "organization", "timezone", "enabled", "dnd_until", "default_action", "allow_critical")
    list_filter = ("enabled", "default_action", "allow_critical")
    search_fields = ("user__username", "user__email", "organization__name", "timezone")
    autocomplete_fields = ("user", "organization")
    list_select_related = ("user", "organization")
    readonly_fields = ("created_at", "updated_at")
    inlines = [QuietHoursScheduleInline, QuietHoursChannelRuleInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        changed = _changed_fields(form, formsets)
        if change and not changed:
            return
        quiet = form.instance
        _audit(
            request,
            action=AuditAction.QUIET_HOURS_CHANGED,
            organization_id=quiet.organization_id,
            user=quiet.user,
            details={"quiet_hours_id": quiet.pk, "changed": changed, "created": not change},
        )


@admin.register(QuietHoursSchedule)
class QuietHoursScheduleAdmin(ModelAdmin):
    list_display = ("id", "quiet_hours", "days_of_week", "start_time", "end_time")
    search_fields = ("quiet_hours__user__username", "quiet_hours__user__email", "quiet_hours__organization__name")
    list_select_related = ("quiet_hours__user", "quiet_hours__organization")
    autocomplete_fields = ("quiet_hours",)


@admin.register(QuietHoursChannelRule)
class QuietHoursChannelRuleAdmin(ModelAdmin):
    list_display = ("id", "quiet_hours", "channel", "action", "allow_critical")
    list_filter = ("channel", "action", "allow_critical")
    search_fields = ("quiet_hours__user__username", "quiet_hours__user__email", "quiet_hours__organization__name")
    list_select_related = ("quiet_hours__user", "quiet_hours__organization")
    autocomplete_fields = ("quiet_hours",)


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


@admin.register(ChannelConfiguration)
class ChannelConfigurationAdmin(ModelAdmin):
    list_display = ("channel", "organization", "enabled", "rate_limit_user_per_hour", "rate_limit_org_per_hour", "rate_limit_action", "fallback_channels")
    list_filter = ("channel", "enabled", "rate_limit_action")
    search_fields = ("organization__name", "channel")
    autocomplete_fields = ("organization", "default_provider")
    list_select_related = ("organization",)
    readonly_fields = ("created_at", "updated_at")
    inlines = [CriticalityRoutingInline]

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
        super()._post_clean()
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


# --- audit, presence, dead letters, idempotency ------------------------------------------------------


@admin.register(NotificationAuditLog)
class NotificationAuditLogAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "action", "outcome", "actor_type", "actor_label", "organization", "notification_id", "delivery_id")
    list_filter = ("action", "outcome", "actor_type")
    search_fields = ("actor_label", "=actor_id", "error_message")
    list_select_related = ("organization",)
    show_full_result_count = False
    fields = (
        "created_at", "organization", "action", "outcome", "actor_type", "actor_id", "actor_label",
        "notification", "delivery", "template", "provider", "webhook", "user", "details_pretty", "error_message",
    )
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="details")
    def details_pretty(self, obj: NotificationAuditLog) -> str:
        return _pretty_json(obj.details)


@admin.register(UserPresence)
class UserPresenceAdmin(ModelAdmin):
    list_display = ("user", "status", "last_seen_at", "last_active_at", "device_type")
    list_filter = ("status", "device_type")
    search_fields = ("user__username", "user__email", "connection_id")
    autocomplete_fields = ("user",)
    list_select_related = ("user",)


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "organization", "channel", "status", "delivery_id", "reason_short", "created_at", "replayed_at")
    list_filter = ("status", "channel", "organization")
    search_fields = ("reason", "=delivery__provider_message_id", "delivery__recipient_address")
    list_select_related = ("organization",)
    fields = (
        "organization", "delivery", "channel", "status", "reason", "payload_pretty", "error_history_pretty",
        "provider_responses_pretty", "created_at", "replayed_at", "discarded_at", "resolved_by",
    )
    readonly_fields = fields
    actions = admin_reliability.DEAD_LETTER_ACTIONS

    @admin.display(description="reason")
    def reason_short(self, obj: DeadLetter) -> str:
        return (obj.reason or "")[:80]

    @admin.display(description="payload")
    def payload_pretty(self, obj: DeadLetter) -> str:
        return _pretty_json(obj.payload)

    @admin.display(description="error history")
    def error_history_pretty(self, obj: DeadLetter) -> str:
        return _pretty_json(obj.error_history)

    @admin.display(description="provider responses")
    def provider_responses_pretty(self, obj: DeadLetter) -> str:
        return _pretty_json(obj.provider_responses)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("key", "organization", "status", "response_code", "created_at", "expires_at")
    list_filter = ("status",)
    search_fields = ("=key",)
    list_select_related = ("organization",)
    fields = ("organization", "key", "request_hash", "status", "response_code", "response_body_pretty", "created_at", "completed_at", "expires_at")
    readonly_fields = fields

    @admin.display(description="response body")
    def response_body_pretty(self, obj: IdempotencyRecord) -> str:
        return _pretty_json(obj.response_body)


@admin.register(BusCommand)
class BusCommandAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("name", "command_id", "organization", "ok", "created_at")
    list_filter = ("name",)
    search_fields = ("=command_id",)
    list_select_related = ("organization",)
    fields = ("organization", "name", "command_id", "ok", "result_pretty", "created_at")
    readonly_fields = fields

    @admin.display(description="result")
    def result_pretty(self, obj: BusCommand) -> str:
        return _pretty_json(obj.result)

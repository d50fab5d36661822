"""Notifications, deliveries and batches in the staff console: evidence, read only."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin

from common.admin import ReadOnlyAdminMixin

from ..models import (
    Notification,
    NotificationBatch,
    NotificationDelivery,
)
from . import reliability
from .common import (
    _pretty_json,
    ReadOnlyInline,
)


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
    routing = trace.get("routing")
    context = routing if isinstance(routing, dict) else {}
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
    actions = reliability.DELIVERY_ACTIONS
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

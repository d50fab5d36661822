"""Audit log, presence, dead letters, idempotency records and bus commands in the staff console."""
from __future__ import annotations


from django.contrib import admin
from unfold.admin import ModelAdmin

from common.admin import ReadOnlyAdminMixin

from ..models import (
    DeadLetter,
    BusCommand,
    IdempotencyRecord,
    NotificationAuditLog,
    UserPresence,
)
from . import reliability
from .common import (
    _pretty_json,
)


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
    actions = reliability.DEAD_LETTER_ACTIONS

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

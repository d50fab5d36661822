"""Provider tables in the staff console; provider records (accounts) are in admin_records.py."""
from django.contrib import admin
from unfold.admin import ModelAdmin

from common.admin import ReadOnlyAdminMixin

from . import admin_records  # noqa: F401  (registers NotificationProvider)
from .models import (
    ProviderCostDaily,
    ProviderHealthMetric,
    ProviderOutbox,
    PushSubscription,
    SuppressedAddress,
)


@admin.register(PushSubscription)
class PushSubscriptionAdmin(ModelAdmin):
    list_display = ("user", "kind", "device_id", "created_at", "last_success_at")
    list_filter = ("kind",)
    search_fields = ("user__username", "user__email", "device_id")
    raw_id_fields = ("user",)
    # Keys and endpoints identify a browser; no reason to show them in a list.
    readonly_fields = ("created_at", "last_success_at")


@admin.register(ProviderOutbox)
class ProviderOutboxAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "channel", "provider_code", "to", "subject")
    list_filter = ("channel", "provider_code")
    search_fields = ("to", "subject", "idempotency_key")
    readonly_fields = [f.name for f in ProviderOutbox._meta.fields]


@admin.register(ProviderHealthMetric)
class ProviderHealthMetricAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("checked_at", "provider", "is_healthy", "response_time_ms", "success_rate_24h", "rate_limit_remaining")
    list_filter = ("is_healthy", "channel", "provider_code", "provider")
    readonly_fields = [f.name for f in ProviderHealthMetric._meta.fields]
    date_hierarchy = "checked_at"


@admin.register(ProviderCostDaily)
class ProviderCostDailyAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("date", "provider_code", "channel", "total_messages", "total_cost", "currency", "average_cost_per_message",
                    "delivery_success_rate", "cost_per_successful_delivery")
    list_filter = ("channel", "provider_code")
    readonly_fields = [f.name for f in ProviderCostDaily._meta.fields]
    date_hierarchy = "date"


@admin.register(SuppressedAddress)
class SuppressedAddressAdmin(ModelAdmin):
    list_display = ("address", "channel", "reason", "organization", "provider_code", "created_at")
    list_filter = ("channel", "reason")
    search_fields = ("address",)
    raw_id_fields = ("organization",)

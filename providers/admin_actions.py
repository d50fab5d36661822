"""Admin actions for NotificationProvider, wired by the notifications admin:

    from providers.admin_actions import validate_credentials
    actions = [validate_credentials]
"""
from __future__ import annotations

from django.contrib import admin, messages

from .maintenance import provider_health_check


@admin.action(description="Validate credentials (run a health check)")
def validate_credentials(modeladmin, request, queryset) -> None:
    for record in queryset.order_by("pk"):
        metric = provider_health_check(provider_id=record.pk)
        if metric.is_healthy:
            modeladmin.message_user(request, f"{record}: credentials work ({metric.response_time_ms} ms).", messages.SUCCESS)
        else:
            # error_message comes from the provider's answer, which never carries our secrets.
            modeladmin.message_user(request, f"{record}: check failed — {metric.error_message}", messages.ERROR)

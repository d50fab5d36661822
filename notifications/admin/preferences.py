"""Preferences and quiet hours in the staff console."""
from __future__ import annotations


from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline


from ..enums import AuditAction
from ..models import (
    ChannelPreference,
    NotificationPreference,
    QuietHours,
    QuietHoursChannelRule,
    QuietHoursSchedule,
)
from .common import (
    _audit,
    _changed_fields,
)


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

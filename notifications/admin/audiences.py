"""Topics (named audiences of an organization) and their subscribers in the staff console;
the API is /api/v1/admin/topics/ (notifications/api/topics.py)."""
from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from ..models import Topic, TopicSubscription


class TopicSubscriptionInline(TabularInline):
    model = TopicSubscription
    extra = 0
    raw_id_fields = ("membership",)
    readonly_fields = ("created_at",)


@admin.register(Topic)
class TopicAdmin(ModelAdmin):
    list_display = ("key", "name", "organization", "created_at")
    search_fields = ("key", "name", "organization__name")
    list_select_related = ("organization",)
    autocomplete_fields = ("organization",)
    readonly_fields = ("created_at", "updated_at")
    inlines = [TopicSubscriptionInline]


@admin.register(TopicSubscription)
class TopicSubscriptionAdmin(ModelAdmin):
    list_display = ("topic", "membership", "created_at")
    search_fields = ("topic__key", "membership__user__username", "membership__user__email")
    list_select_related = ("topic", "membership__user")
    raw_id_fields = ("topic", "membership")
    readonly_fields = ("created_at",)

from django.contrib import admin

from .models import RoleplayCharacterRole, RoleplayTemplate


class RoleInline(admin.TabularInline):
    model = RoleplayCharacterRole
    extra = 0
    fields = ("character", "role_name", "role_description", "required_voice_emotions", "is_protagonist", "filled_at")
    readonly_fields = ("filled_at",)
    raw_id_fields = ("character",)


@admin.register(RoleplayTemplate)
class RoleplayTemplateAdmin(admin.ModelAdmin):
    list_display = ("template_name", "story", "difficulty_level", "total_characters", "is_public", "cast_completed_at")
    list_filter = ("difficulty_level", "is_public")
    search_fields = ("template_name", "story__title")
    raw_id_fields = ("story", "created_by")
    readonly_fields = ("total_characters", "cast_completed_at", "created_at")
    inlines = [RoleInline]

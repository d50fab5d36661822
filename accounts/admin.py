from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from .models import ApiKey, Membership, OnCallRotation, OnCallShift, Organization, Project, Team, User
from .services import api_key_create


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    # The theme's own forms: Django's would render unstyled inside it.
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ("username", "email", "display_name", "timezone", "locale", "is_staff", "is_active")
    list_filter = ("is_staff", "is_active", "locale")
    search_fields = ("username", "email", "display_name", "phone")
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("Troubadour", {"fields": ("display_name", "phone", "timezone", "locale")}))


class MembershipInline(TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(Team)
class TeamAdmin(ModelAdmin):
    list_display = ("name", "organization", "created_at")
    list_filter = ("organization",)
    search_fields = ("name", "organization__name")


@admin.register(Project)
class ProjectAdmin(ModelAdmin):
    list_display = ("name", "organization", "team", "created_at")
    list_filter = ("organization",)
    search_fields = ("name",)


@admin.register(Membership)
class MembershipAdmin(ModelAdmin):
    list_display = ("user", "organization", "role", "external_id", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "user__email", "organization__name", "=external_id")
    autocomplete_fields = ("user",)


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    list_display = ("name", "organization", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("organization",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    fields = ("organization", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, raw = api_key_create(organization=obj.organization, name=obj.name, created_by=request.user)
        obj.pk, obj.prefix, obj.key_hash = key.pk, key.prefix, key.key_hash
        messages.warning(request, f"Copy this key now, it will not be shown again: {raw}")


class OnCallShiftInline(TabularInline):
    model = OnCallShift
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(OnCallRotation)
class OnCallRotationAdmin(ModelAdmin):
    list_display = ("name", "organization", "timezone", "created_at")
    list_filter = ("organization",)
    search_fields = ("name", "organization__name")
    inlines = [OnCallShiftInline]

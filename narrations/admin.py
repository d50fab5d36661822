from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline

from common.exceptions import ProviderError

from .models import Story, StoryCharacter, StoryNarration
from .services import narration_generate


class StoryCharacterInline(TabularInline):
    model = StoryCharacter
    extra = 0
    fields = ("name", "description", "voice_id")


@admin.register(Story)
class StoryAdmin(ModelAdmin):
    list_display = ("title", "owner", "organization", "language", "created_at")
    list_filter = ("language", "created_at")
    search_fields = ("title", "owner__username", "owner__email", "organization__name")
    list_select_related = ("owner", "organization")
    raw_id_fields = ("owner", "organization")
    inlines = [StoryCharacterInline]


@admin.register(StoryCharacter)
class StoryCharacterAdmin(ModelAdmin):
    list_display = ("name", "story", "voice_id", "created_at")
    search_fields = ("name", "story__title")
    list_select_related = ("story",)
    raw_id_fields = ("story",)


@admin.register(StoryNarration)
class StoryNarrationAdmin(ModelAdmin):
    list_display = (
        "id", "story", "conversation_style", "narrator_profile", "user", "status", "engine", "attempts",
        "total_duration_ms", "generated_at",
    )
    list_filter = ("status", "conversation_style", "engine")
    search_fields = ("story__title", "user__username", "user__email", "error")
    list_select_related = ("story", "user")
    raw_id_fields = ("story", "user")
    readonly_fields = (
        "segments", "status", "engine", "error", "attempts", "total_duration_ms", "generation_started_at",
        "generated_at", "created_at", "updated_at",
    )
    actions = ["regenerate"]

    @admin.action(description="Regenerate the selected narrations")
    def regenerate(self, request: HttpRequest, queryset: QuerySet[StoryNarration]) -> None:
        done = failed = 0
        for narration_id in queryset.values_list("pk", flat=True):
            try:
                narration_generate(narration_id=narration_id, force=True)
                done += 1
            except ProviderError as exc:
                failed += 1
                self.message_user(request, f"Narration {narration_id}: {exc}", level=messages.ERROR)
        if done:
            self.message_user(request, f"Regenerated {done} narration(s).", level=messages.SUCCESS)
        if failed:
            self.message_user(request, f"{failed} narration(s) failed; see the error on each row.", level=messages.WARNING)

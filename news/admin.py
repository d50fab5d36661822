from django.contrib import admin

from .models import NewsArticle, NewsNarration
from .services import reading_time_minutes


@admin.register(NewsArticle)
class NewsArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "organization", "category", "language", "reading_time_minutes", "published_at")
    list_filter = ("category", "language", "published_at")
    search_fields = ("title", "summary", "organization__name")
    list_select_related = ("organization",)
    raw_id_fields = ("organization", "created_by")
    readonly_fields = ("reading_time_minutes", "created_at", "updated_at")

    def save_model(self, request, obj: NewsArticle, form, change) -> None:
        # Reading time is derived from the text, whoever edits it.
        obj.reading_time_minutes = reading_time_minutes(summary=obj.summary, full_content=obj.full_content)
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(NewsNarration)
class NewsNarrationAdmin(admin.ModelAdmin):
    list_display = ("id", "article", "conversation_style", "status", "engine", "total_duration_ms", "generated_at")
    list_filter = ("status", "conversation_style", "engine")
    raw_id_fields = ("article", "user")
    readonly_fields = ("segments", "generated_at", "generation_started_at", "attempts", "error")

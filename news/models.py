"""News articles shared by invitation, narrated in the style of each relationship (seed 000
"News Feed Integration": tables `news_articles`, `news_narrations`)."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from narrations.models import NarrationBase


class NewsArticle(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="news_articles")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="news_articles"
    )
    title = models.CharField(max_length=300)
    summary = models.TextField()
    full_content = models.TextField(blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    category = models.CharField(max_length=100, blank=True)
    tags = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=10, default="en")
    # Computed from the words of the article (news.services.reading_time_minutes), never typed in.
    reading_time_minutes = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "news_articles"
        ordering = ["-published_at", "-id"]
        indexes = [models.Index(fields=["organization", "category"], name="news_org_category_idx")]

    def __str__(self) -> str:
        return self.title


class NewsNarration(NarrationBase):
    """The article's summary read in one conversation style; shared rows (user NULL) are one per
    (article, style, narrator profile), pre-created when invitations are sent."""

    article = models.ForeignKey(NewsArticle, on_delete=models.CASCADE, related_name="narrations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="news_narrations"
    )

    class Meta:
        db_table = "news_narrations"
        constraints = [
            models.UniqueConstraint(
                fields=["article", "conversation_style", "narrator_profile"],
                condition=models.Q(user__isnull=True),
                name="uniq_shared_news_narration_per_style",
            ),
        ]
        indexes = [models.Index(fields=["status"], name="news_narration_status_idx")]

    def __str__(self) -> str:
        return f"{self.article} · {self.conversation_style} ({self.status})"

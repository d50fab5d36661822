"""News articles as invitation content (invitation type `news_feed`, content type `news_article`)."""
from __future__ import annotations

from typing import Any

from common.exceptions import NotFound
from invitations.content_types import ContentKind

from .models import NewsArticle, NewsNarration
from .narration import news_narration_generate, news_narrations_ensure_shared
from .services import news_narration_pregenerate_enqueue


class NewsKind(ContentKind):
    key = "news_article"
    invitation_type = "news_feed"
    label = "News article"
    landing_partial = "news/_landing.html"
    invitation_event = "news.invitation"
    # The inviter's acceptance notice reads the same for any content ("accepted your invitation to <title>").
    accepted_event = "story.invitation_accepted"

    def load(self, content_id: Any) -> NewsArticle:
        article = NewsArticle.objects.select_related("organization").filter(pk=content_id).first()
        if article is None:
            raise NotFound("Article not found.")
        return article

    def title(self, content: NewsArticle) -> str:
        return content.title

    def metadata(self, content: NewsArticle) -> dict[str, Any]:
        return {
            "title": content.title,
            "category": content.category,
            "tags": content.tags,
            "reading_time_minutes": content.reading_time_minutes,
        }

    def event_data(self, content: NewsArticle) -> dict[str, Any]:
        return {"articleTitle": content.title, "articleCategory": content.category, "storyTitle": content.title}

    def page_url(self, content: NewsArticle) -> str:
        return "/"

    def ensure_narrations(self, content: NewsArticle, styles: list[str]) -> tuple[dict[str, NewsNarration], list[int]]:
        return news_narrations_ensure_shared(article=content, styles=styles)

    def narration_for(self, invitation: Any) -> NewsNarration | None:
        # One shared row per (article, style, profile): found by its unique key, no link column needed.
        return NewsNarration.objects.filter(
            article_id=invitation.content_id, conversation_style=invitation.conversation_style,
            user__isnull=True, narrator_profile="default",
        ).first()

    def generate(self, narration_id: int) -> NewsNarration:
        return news_narration_generate(narration_id=narration_id)

    def pregenerate(self, narration_ids: list[int]) -> None:
        news_narration_pregenerate_enqueue(narration_ids=narration_ids)

    def public_content(self, invitation: Any, content: NewsArticle) -> dict[str, Any]:
        return {
            "id": content.pk,
            "title": content.title,
            "summary": content.summary,
            "source_url": content.source_url or None,
            "category": content.category or None,
            "published_at": content.published_at,
            "reading_time_minutes": content.reading_time_minutes,
        }


NEWS = NewsKind()

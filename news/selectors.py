"""Reads of news articles, scoped to the organization they belong to."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import Organization
from common.exceptions import NotFound

from .models import NewsArticle


def articles_for_organization(*, organization: Organization | None, category: str = "") -> QuerySet[NewsArticle]:
    if organization is None:
        return NewsArticle.objects.none()
    qs = NewsArticle.objects.filter(organization=organization)
    if category:
        qs = qs.filter(category=category.strip().lower())
    return qs.order_by("-published_at", "-id")


def article_get_for_organization(*, article_id: Any, organization: Organization | None) -> NewsArticle:
    """The article if it belongs to `organization`; NotFound otherwise (never reveals that it exists)."""
    try:
        article_id = int(article_id)
    except (TypeError, ValueError):
        raise NotFound("Article not found.") from None
    article = articles_for_organization(organization=organization).filter(pk=article_id).first()
    if article is None:
        raise NotFound("Article not found.")
    return article


def article_serialize(article: NewsArticle) -> dict[str, Any]:
    return {
        "id": article.pk,
        "title": article.title,
        "summary": article.summary,
        "full_content": article.full_content,
        "source_url": article.source_url or None,
        "published_at": article.published_at,
        "category": article.category or None,
        "tags": article.tags,
        "language": article.language,
        "reading_time_minutes": article.reading_time_minutes,
        "created_at": article.created_at,
    }

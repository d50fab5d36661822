"""Writes for news articles and their narrations."""
from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.dateparse import parse_datetime

from accounts.models import Organization
from common.exceptions import ValidationError
from common.publish import tasks_publish_on_commit
from common.queues import Queue

from .models import NewsArticle

WORDS_PER_MINUTE = 200  # silent reading speed for reading_time_minutes
TITLE_MAX: int = NewsArticle._meta.get_field("title").max_length or 0
SUMMARY_MAX = 5_000
CONTENT_MAX = 200_000
CATEGORY_MAX: int = NewsArticle._meta.get_field("category").max_length or 0
TAGS_MAX, TAG_MAX = 20, 50
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
_url = URLValidator(schemes=["http", "https"])


def reading_time_minutes(*, summary: str, full_content: str = "") -> int:
    """Minutes to read the article (its full text, else its summary) at 200 words a minute; at least 1."""
    words = len((full_content or summary).split())
    return max(1, math.ceil(words / WORDS_PER_MINUTE))


def _text(body: dict, name: str, errors: dict, *, required: bool, limit: int) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            errors[name] = ["This field is required."]
        return ""
    if not isinstance(value, str):
        errors[name] = ["Must be text."]
        return ""
    value = value.strip()
    if required and not value:
        errors[name] = ["This field may not be blank."]
    elif len(value) > limit:
        errors[name] = [f"Ensure this field has at most {limit} characters."]
    return value


def _validate(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError({"detail": "Send a JSON object."})
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(body) - {"title", "summary", "full_content", "source_url", "published_at", "category", "tags", "language"})
    if unknown:
        errors["non_field_errors"] = [f"Unknown field(s): {', '.join(unknown)}."]
    data: dict[str, Any] = {
        "title": _text(body, "title", errors, required=True, limit=TITLE_MAX),
        "summary": _text(body, "summary", errors, required=True, limit=SUMMARY_MAX),
        "full_content": _text(body, "full_content", errors, required=False, limit=CONTENT_MAX),
        "category": _text(body, "category", errors, required=False, limit=CATEGORY_MAX).lower(),
        "source_url": _text(body, "source_url", errors, required=False, limit=2000),
    }
    if data["source_url"] and "source_url" not in errors:
        try:
            _url(data["source_url"])
        except DjangoValidationError:
            errors["source_url"] = ["Enter a valid http(s) URL."]
    published: datetime | None = None
    raw = body.get("published_at")
    if raw not in (None, ""):
        published = parse_datetime(raw) if isinstance(raw, str) else None
        if published is None:
            errors["published_at"] = ["Use an ISO 8601 date and time, e.g. 2026-11-30T09:00:00Z."]
    data["published_at"] = published
    tags = body.get("tags")
    if tags in (None, ""):
        tags = []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        errors["tags"] = ["Send a list of words."]
        tags = []
    elif len(tags) > TAGS_MAX or any(len(t) > TAG_MAX for t in tags):
        errors["tags"] = [f"At most {TAGS_MAX} tags of at most {TAG_MAX} characters each."]
    data["tags"] = list(dict.fromkeys(t.strip().lower() for t in tags))
    language = body.get("language") or "en"
    if not isinstance(language, str) or not _LANGUAGE_RE.match(language):
        errors["language"] = ["Use a language code such as 'en' or 'fr-CA'."]
    data["language"] = language if isinstance(language, str) else "en"
    if errors:
        raise ValidationError(errors)
    return data


@transaction.atomic(durable=True)
def article_create(*, organization: Organization, created_by, body: Any) -> NewsArticle:
    """An article of `organization`, validated whole (every error reported, nothing saved)."""
    data = _validate(body)
    return NewsArticle.objects.create(
        organization=organization,
        created_by=created_by,
        reading_time_minutes=reading_time_minutes(summary=data["summary"], full_content=data["full_content"]),
        **data,
    )


def news_narration_pregenerate_enqueue(*, narration_ids: list[int]) -> None:
    """Queue background generation of each news narration, once per id, after the current commit."""
    for narration_id in dict.fromkeys(int(i) for i in narration_ids):
        tasks_publish_on_commit("narrations.news_pregenerate", calls=[[narration_id]], queue=Queue.NARRATION.value)

"""News narrations: the shared row of each style, and its generation (the summary in the
relationship's style), on the same single-flight machinery as story narrations."""
from __future__ import annotations

from narrations.engines import NarrationJob
from narrations.segmenter import build_script
from narrations.services import narration_generate_row, narrations_ensure_shared_rows
from narrations.styles import get_style

from .models import NewsArticle, NewsNarration


def news_narrations_ensure_shared(*, article: NewsArticle, styles: list[str]) -> tuple[dict[str, NewsNarration], list[int]]:
    return narrations_ensure_shared_rows(model=NewsNarration, content_field="article", content=article, styles=styles)


def _job_for(narration: NewsNarration) -> NarrationJob:
    """The summary read in the relationship's style: its greeting, the summary, its sign-off."""
    article = NewsArticle.objects.select_related("created_by").get(pk=narration.article_id)
    style = get_style(narration.conversation_style)
    inviter = article.created_by.get_display_name() if article.created_by is not None else None
    return NarrationJob(
        narration_id=narration.pk,
        story_id=0,
        title=article.title,
        language=article.language or "en",
        style=style,
        script=build_script(
            title=article.title, content=article.summary, character_names=[], style=style, inviter_name=inviter
        ),
        narrator_voice=narration.narrator_voice,
        audio_prefix=f"news/{article.pk}",
    )


def news_narration_generate(*, narration_id: int, force: bool = False) -> NewsNarration:
    """Generate a news narration once under concurrency (the same single-flight as stories)."""
    return narration_generate_row(model=NewsNarration, narration_id=narration_id, job_for=_job_for, force=force)

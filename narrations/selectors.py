"""Reads for stories and narrations, with the permission checks they guard."""
from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.db.models import QuerySet

from common.exceptions import NotFound

from .models import Story, StoryNarration


def _person_pk(user) -> int | None:
    # API-key principals and anonymous users own nothing.
    return getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None


def stories_for_user(*, user) -> QuerySet[Story]:
    pk = _person_pk(user)
    if pk is None:
        return Story.objects.none()
    return Story.objects.filter(owner_id=pk).prefetch_related("characters").order_by("-created_at", "-pk")


def story_get_for_owner(*, story_id: int, user) -> Story:
    """The story if `user` owns it; NotFound otherwise (never reveals that it exists)."""
    try:
        story_id = int(story_id)
    except (TypeError, ValueError):
        raise NotFound("Story not found.") from None
    story = stories_for_user(user=user).filter(pk=story_id).first()
    if story is None:
        raise NotFound("Story not found.")
    return story


def story_serialize(story: Story) -> dict[str, Any]:
    return {
        "id": story.pk,
        "title": story.title,
        "content": story.content,
        "characters": [{"id": c.pk, "name": c.name} for c in story.characters.all()],
        "created_at": story.created_at.isoformat().replace("+00:00", "Z"),
    }


def _audio_url(path: str | None) -> str | None:
    return default_storage.url(path) if path else None


def narration_serialize(narration: StoryNarration) -> dict[str, Any]:
    """The narration as listeners get it; audio URLs are resolved now, never stored."""
    ready = narration.segments is not None
    return {
        "id": narration.pk,
        "conversation_style": narration.conversation_style,
        "status": narration.status,
        "segments": [
            {
                "index": s["index"],
                "speaker": s["speaker"],
                "text": s["text"],
                "audio_url": _audio_url(s.get("audio_path")),
                "duration_ms": s["duration_ms"],
            }
            for s in (narration.segments or [])
        ]
        if ready
        else [],
        "total_duration_ms": narration.total_duration_ms,
    }

"""Writes for stories and narrations."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from accounts.selectors import user_primary_organization
from common.exceptions import (
    NotFound,
    ProviderError,
    ProviderPermanentError,
    ValidationError,
)
from common.publish import tasks_publish_on_commit
from common.queues import Queue

from .engines import NarrationJob, get_engine
from .models import (
    DEFAULT_NARRATOR_PROFILE,
    NarrationStatus,
    Story,
    StoryCharacter,
    StoryNarration,
)
from .segmenter import build_script
from .styles import get_style

logger = logging.getLogger(__name__)

TITLE_MAX: int = Story._meta.get_field("title").max_length or 0
CHARACTER_NAME_MAX: int = StoryCharacter._meta.get_field("name").max_length or 0
CONTENT_MAX = 100_000
CHARACTERS_MAX = 50


def _validate_story(title: Any, content: Any, characters: Any) -> tuple[str, str, list[dict[str, str]]]:
    errors: dict[str, list[Any]] = {}
    title = title.strip() if isinstance(title, str) else ""
    if not title:
        errors["title"] = ["A title is required."]
    elif len(title) > TITLE_MAX:
        errors["title"] = [f"Ensure the title has at most {TITLE_MAX} characters."]
    content = content.strip() if isinstance(content, str) else ""
    if not content:
        errors["content"] = ["The story needs some content."]
    elif len(content) > CONTENT_MAX:
        errors["content"] = [f"Ensure the story has at most {CONTENT_MAX} characters."]
    cleaned: list[dict[str, str]] = []
    if characters is not None:
        if not isinstance(characters, list):
            errors["characters"] = ["Expected a list of characters."]
        elif len(characters) > CHARACTERS_MAX:
            errors["characters"] = [f"A story can have at most {CHARACTERS_MAX} characters."]
        else:
            seen: set[str] = set()
            problems: list[str] = []
            for position, item in enumerate(characters):
                name = item.get("name") if isinstance(item, dict) else None
                name = name.strip() if isinstance(name, str) else ""
                description = item.get("description") if isinstance(item, dict) else None
                if not name:
                    problems.append(f"Character {position + 1}: a name is required.")
                elif len(name) > CHARACTER_NAME_MAX:
                    problems.append(f"Character {position + 1}: the name has more than {CHARACTER_NAME_MAX} characters.")
                elif name.casefold() in seen:
                    problems.append(f"Character {position + 1}: the name {name!r} is used twice.")
                else:
                    seen.add(name.casefold())
                    cleaned.append({"name": name, "description": description.strip() if isinstance(description, str) else ""})
            if problems:
                errors["characters"] = problems
    if errors:
        raise ValidationError(errors)
    return title, content, cleaned


@transaction.atomic
def story_create(
    *, owner, title: str, content: str, characters: list[dict] | None = None, organization=None
) -> Story:
    """A story and its characters, all or nothing. The organization defaults to the owner's primary one."""
    title, content, cleaned = _validate_story(title, content, characters)
    if organization is None:
        organization = user_primary_organization(user=owner)
    story = Story.objects.create(
        owner=owner, organization=organization, title=title, content=content, language=getattr(owner, "locale", "") or "en"
    )
    if cleaned:
        StoryCharacter.objects.bulk_create(
            [StoryCharacter(story=story, name=c["name"], description=c["description"]) for c in cleaned]
        )
    return story


def narrations_ensure_shared(
    *, story: Story, styles: Iterable[str], narrator_profile: str = DEFAULT_NARRATOR_PROFILE
) -> tuple[dict[str, StoryNarration], list[int]]:
    """The shared story narration row (user NULL) of each style, created when missing."""
    return narrations_ensure_shared_rows(
        model=StoryNarration, content_field="story", content=story, styles=styles, narrator_profile=narrator_profile
    )


def narrations_ensure_shared_rows(
    *,
    model: Any,  # StoryNarration or NewsNarration: the abstract base has neither manager nor user
    content_field: str,
    content: Any,
    styles: Iterable[str],
    narrator_profile: str = DEFAULT_NARRATOR_PROFILE,
) -> tuple[dict[str, Any], list[int]]:
    """The shared narration row (user NULL) of `content` in each style, created when missing.

    `model` is the narration table of the content (story, news article...), `content_field`
    its foreign key to the content. Three queries whatever the number of styles (one when
    they all exist). Safe when two callers race: the partial unique index plus ON CONFLICT DO
    NOTHING keeps one row per style. Under such a race both callers may report a row as new;
    pre-generation is idempotent, so that costs a no-op task, never a second generation.
    """
    wanted = list(dict.fromkeys(styles))
    for code in wanted:
        get_style(code)  # raises ValidationError for an unknown style
    if not wanted:
        return {}, []

    def select() -> dict[str, Any]:
        rows = model.objects.filter(
            **{content_field: content},
            user__isnull=True,
            narrator_profile=narrator_profile,
            conversation_style__in=wanted,
        )
        found = {}
        for row in rows:
            setattr(row, content_field, content)
            found[row.conversation_style] = row
        return found

    existing = select()
    missing = [code for code in wanted if code not in existing]
    if not missing:
        return existing, []
    model.objects.bulk_create(
        [
            model(**{content_field: content}, user=None, narrator_profile=narrator_profile, conversation_style=code)
            for code in missing
        ],
        ignore_conflicts=True,
    )
    rows = select()
    known = {row.pk for row in existing.values()}
    return rows, [row.pk for code, row in rows.items() if row.pk not in known]


def _job_for(narration: StoryNarration) -> NarrationJob:
    story = Story.objects.select_related("owner").get(pk=narration.story_id)
    characters = list(StoryCharacter.objects.filter(story=story).values_list("name", "voice_id"))
    invitee = narration.user.get_display_name() if narration.user is not None else None
    style = get_style(narration.conversation_style)
    return NarrationJob(
        narration_id=narration.pk,
        story_id=story.pk,
        title=story.title,
        language=story.language or "en",
        style=style,
        script=build_script(
            title=story.title,
            content=story.content,
            character_names=[name for name, _ in characters],
            style=style,
            inviter_name=story.owner.get_display_name(),
            invitee_name=invitee,
        ),
        narrator_voice=narration.narrator_voice,
        character_voices={name: voice for name, voice in characters if voice},
    )


def _delete_stale_audio(paths: set[str]) -> None:
    for path in paths:
        try:
            default_storage.delete(path)
        except Exception:  # noqa: BLE001 -- a leftover file is harmless; failing the request over it is not
            logger.warning("could not delete stale narration audio %s", path)


def narration_generate(*, narration_id: int, force: bool = False) -> StoryNarration:
    """Generate a story narration once, however many callers ask at the same moment."""
    return narration_generate_row(model=StoryNarration, narration_id=narration_id, job_for=_job_for, force=force)


def narration_generate_row(
    *, model: Any, narration_id: int, job_for: Callable[[Any], NarrationJob], force: bool = False
) -> Any:
    """Generate one narration row of any content (`model`, its script from `job_for(row)`) once,
    however many callers ask at the same moment.

    The row is locked (`SELECT ... FOR UPDATE`) for the whole engine run: concurrent callers
    block on the lock, then find the row READY and return it without running the engine.
    On SQLite the IMMEDIATE transaction mode gives the same exclusion.

    A failure is recorded on the row (FAILED, error, attempts) and the engine's ProviderError
    re-raised; calling again retries. Call it outside a transaction: inside one, the lock is
    held until the caller commits and a recorded failure rolls back with the caller's work.
    """
    current = model.objects.filter(pk=narration_id).first()
    if current is None:
        raise NotFound(f"Narration {narration_id} does not exist.")
    if current.status == NarrationStatus.READY and not force:
        return current

    failure: BaseException | None = None
    stale: set[str] = set()
    with transaction.atomic():
        narration = model.objects.select_for_update().filter(pk=narration_id).first()
        if narration is None:
            raise NotFound(f"Narration {narration_id} does not exist.")
        if narration.status == NarrationStatus.READY and not force:
            return narration
        previous_paths = {s.get("audio_path") for s in (narration.segments or []) if s.get("audio_path")}
        narration.attempts += 1
        narration.generation_started_at = timezone.now()
        try:
            engine = get_engine()
            narration.engine = engine.code
            result = engine.narrate(job_for(narration))
        except Exception as exc:
            failure = exc
            if not isinstance(exc, ProviderError):
                logger.exception("narration %s: unexpected engine error", narration.pk)
            narration.status = NarrationStatus.FAILED
            narration.error = f"{exc.__class__.__name__}: {exc}"[:2000]
            logger.warning("narration %s failed (attempt %s): %s", narration.pk, narration.attempts, narration.error)
        else:
            narration.status = NarrationStatus.READY
            narration.engine = result.engine
            narration.segments = result.segments
            narration.total_duration_ms = result.total_duration_ms
            narration.error = ""
            narration.generated_at = timezone.now()
            stale = previous_paths - {s["audio_path"] for s in result.segments if s["audio_path"]}
        narration.save()
        if stale:
            transaction.on_commit(lambda: _delete_stale_audio(stale))
    if failure is not None:
        if isinstance(failure, ProviderError):
            raise failure
        # An unexpected error is a bug, but callers only need to know the narration failed.
        raise ProviderPermanentError(f"Narration failed: {failure.__class__.__name__}") from failure
    return narration


def narration_pregenerate_enqueue(*, narration_ids: list[int]) -> None:
    """Queue background generation of each narration, once per id, after the current commit."""
    for narration_id in dict.fromkeys(int(i) for i in narration_ids):
        tasks_publish_on_commit("narrations.pregenerate", calls=[[narration_id]], queue=Queue.NARRATION.value)


__all__ = [
    "narration_generate",
    "narration_generate_row",
    "narration_pregenerate_enqueue",
    "narrations_ensure_shared",
    "narrations_ensure_shared_rows",
    "story_create",
]

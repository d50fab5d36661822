from __future__ import annotations

import pytest

from invitations.models import InvitationHistory, StoryInvitation
from narrations.models import StoryNarration
from narrations.services import story_create

STORY_TEXT = (
    "The lamp at the end of the pier had not been lit for years.\n\n"
    'Mara: "Someone has to climb the stairs tonight."\n\n'
    "The Captain laughed and handed her the key."
)


@pytest.fixture(autouse=True)
def _inline_tasks_text_narrations(settings):
    # Tasks queued after commit (pre-generation) run inline instead of needing a worker, and
    # narrations are text-only (no eSpeak) unless a test asks for audio: fast and offline.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"


@pytest.fixture
def with_audio(settings):
    settings.NARRATION_ESPEAK_LIBRARY = ""  # the library shipped by espeakng-loader


@pytest.fixture
def story(user):
    return story_create(
        owner=user,
        title="The Lighthouse",
        content=STORY_TEXT,
        characters=[{"name": "Mara"}, {"name": "Captain"}],
    )


@pytest.fixture
def other_story(other_user):
    return story_create(owner=other_user, title="Elsewhere", content="A story of someone else.", characters=[{"name": "Zed"}])


def counts() -> tuple[int, int, int]:
    """(invitations, history rows, narrations): what a rejected request must leave untouched."""
    return StoryInvitation.objects.count(), InvitationHistory.objects.count(), StoryNarration.objects.count()


def invite_url(story_id: int) -> str:
    return f"/api/v1/stories/{story_id}/invitations/"


def people(n: int, style: str = "respectful", *, prefix: str = "guest") -> list[dict]:
    return [{"email": f"{prefix}{i}@example.com", "conversation_style": style} for i in range(n)]

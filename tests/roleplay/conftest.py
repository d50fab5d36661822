from __future__ import annotations

import pytest

from narrations.services import story_create
from roleplay.services import roleplay_template_create

STORY_TEXT = (
    "The lamp at the end of the pier had not been lit for years.\n\n"
    'Mara: "Someone has to climb the stairs tonight."\n\n'
    'Captain: "Then take the key, and mind the seventh step."\n\n'
    "The Captain laughed and handed her the key."
)


@pytest.fixture(autouse=True)
def _inline_tasks_text_narrations(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"


@pytest.fixture
def story(user):
    return story_create(owner=user, title="The Lighthouse", content=STORY_TEXT,
                        characters=[{"name": "Mara"}, {"name": "Captain"}])


@pytest.fixture
def template(story, user):
    mara, captain = story.characters.order_by("pk")
    return roleplay_template_create(story=story, created_by=user, body={
        "template_name": "Night watch", "difficulty_level": "beginner", "estimated_duration_minutes": 15,
        "roles": [
            {"character_id": mara.pk, "role_name": "Mara the keeper", "required_voice_emotions": ["brave", "tired"],
             "is_protagonist": True},
            {"character_id": captain.pk, "role_name": "The Captain", "role_description": "Gruff but kind."},
        ],
    })


def roles_of(template) -> dict[str, int]:
    return {role.character.name: role.pk for role in template.roles.select_related("character")}


def invite_url(story_id: int) -> str:
    return f"/api/v1/stories/{story_id}/invitations/"


def token_of(invitation: dict) -> str:
    return invitation["invite_url"].rsplit("/i/", 1)[1]


@pytest.fixture
def other_story(other_user):
    return story_create(owner=other_user, title="Elsewhere", content="A story of someone else.", characters=[{"name": "Zed"}])

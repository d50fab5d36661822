from __future__ import annotations

import pytest

from news.services import article_create

SUMMARY = (
    "The city council approved a new night-bus line linking the harbour to the university. "
    "Service starts in March and runs every twenty minutes until two in the morning."
)


@pytest.fixture(autouse=True)
def _inline_tasks_text_narrations(settings):
    # Pre-generation runs inline instead of needing a worker, and narrations are text-only.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"


@pytest.fixture
def article(user, organization):
    return article_create(
        organization=organization,
        created_by=user,
        body={"title": "Night buses to the harbour", "summary": SUMMARY, "category": "Local",
              "tags": ["transport", "city"], "source_url": "https://news.example/night-bus"},
    )


def share_url(article_id: int) -> str:
    return f"/api/v1/news/articles/{article_id}/invitations/"


def token_of(invitation: dict) -> str:
    return invitation["invite_url"].rsplit("/i/", 1)[1]

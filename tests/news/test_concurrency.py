"""Six invitees of one style landing on a news article at once: its narration is generated once."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from invitations.models import InvitationStatus, StoryInvitation
from invitations.services import content_invitations_send
from narrations.models import NarrationStatus
from news.content import NEWS
from news.models import NewsNarration

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.django_db(transaction=True)
def test_concurrent_accepts_generate_the_news_narration_once(article, user, settings):
    items = [{"email": f"reader{i}@example.com", "conversation_style": "close_friends"} for i in range(6)]
    result = content_invitations_send(kind=NEWS, content=article, inviter=user, items=items)
    (narration,) = result.narrations
    # Put the pre-generated row back to "not generated yet", as when the worker is behind.
    NewsNarration.objects.filter(pk=narration.pk).update(
        status=NarrationStatus.PENDING, segments=None, attempts=0, total_duration_ms=None
    )
    settings.NARRATION_ESPEAK_LIBRARY = ""  # real audio files, so a second run would show on disk
    tokens = list(result.tokens.values())
    barrier = threading.Barrier(len(tokens))
    answers: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    def accept(token: str) -> None:
        try:
            client = APIClient()
            barrier.wait(timeout=30)
            response = client.post(f"/api/v1/invitations/by-token/{token}/accept/")
            answers.append((response.status_code, response.json()))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert [status for status, _ in answers] == [200] * len(tokens)
    narration.refresh_from_db()
    assert narration.status == NarrationStatus.READY and narration.attempts == 1
    assert len({repr(body["narration"]) for _, body in answers}) == 1
    audio = list((Path(settings.MEDIA_ROOT) / "news" / str(article.pk)).rglob("*.wav"))
    assert audio and len(audio) == sum(1 for s in narration.segments if s.get("audio_path"))
    assert StoryInvitation.objects.filter(content_type="news_article", status=InvitationStatus.ACCEPTED).count() == 6

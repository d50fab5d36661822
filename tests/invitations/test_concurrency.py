"""Ten invitees of one style accepting at the same moment: the shared narration is generated once."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from invitations.models import InvitationStatus, StoryInvitation
from invitations.services import invitations_send
from narrations.models import NarrationStatus, StoryNarration

from .conftest import people

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_accepts_generate_once(story, user, settings):
    result = invitations_send(story=story, inviter=user, items=people(10, "parent_to_child"))
    tokens = list(result.tokens.values())
    (narration,) = result.narrations
    # Pre-generation already ran inline (eager, text-only) on commit; put the row back to
    # "not generated yet" so the ten visitors find it pending, as when the worker is behind.
    StoryNarration.objects.filter(pk=narration.pk).update(
        status=NarrationStatus.PENDING, segments=None, attempts=0, total_duration_ms=None
    )
    settings.NARRATION_ESPEAK_LIBRARY = ""  # real audio files, so a second run would show on disk

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
    assert [status for status, _ in answers] == [200] * 10
    narration.refresh_from_db()
    assert narration.status == NarrationStatus.READY
    assert narration.attempts == 1  # one engine run
    assert len({repr(body["narration"]) for _, body in answers}) == 1  # everyone got the same narration
    audio_files = list((Path(settings.MEDIA_ROOT) / "narrations").rglob("*.wav"))
    assert audio_files and len(audio_files) == sum(1 for s in narration.segments if s.get("audio_path"))
    assert StoryInvitation.objects.filter(story=story, status=InvitationStatus.ACCEPTED).count() == 10

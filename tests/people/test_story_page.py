"""The storyteller's story page: narrations per style, search and pages of invitees, a new link
(copied or sent again), delivery progress, and re-inviting someone who accepted refused."""
from __future__ import annotations

import re

import pytest
from django.core import mail

from invitations.models import HistoryAction, InvitationHistory, StoryInvitation
from invitations.services import invitation_accept, invitations_send
from narrations.services import story_create

from ..factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _inline(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def story(user, django_capture_on_commit_callbacks):
    story = story_create(owner=user, title="The Lighthouse", content="The lamp had not been lit for years.", characters=[])
    items = [{"email": f"guest{i:02d}@example.com", "conversation_style": "jovial" if i % 2 else "respectful"} for i in range(30)]
    with django_capture_on_commit_callbacks(execute=True):
        invitations_send(story=story, inviter=user, items=items)
    return story


def test_invitees_are_paginated_and_searchable_with_narrations_per_style(client, user, story, django_assert_max_num_queries):
    client.force_login(user)
    # the same as for 4 invitees (tests/invitations/test_pages.py); +2 for the latest batch job's progress
    with django_assert_max_num_queries(14):
        html = client.get(f"/stories/{story.pk}/").content.decode()
    assert html.count("data-invitation-id=") == 25 and "1–25 of 30" in html
    assert "<strong>30</strong>invited" in html
    assert re.search(r'data-style="jovial"><strong>Jovial</strong> <span class="pill \w+">\w+</span> <span class="muted">15 invitees', html)
    assert client.get(f"/stories/{story.pk}/?page=2").content.decode().count("data-invitation-id=") == 5
    found = client.get(f"/stories/{story.pk}/?q=GUEST07").content.decode()
    assert found.count("data-invitation-id=") == 1 and "guest07@example.com" in found
    assert "Nobody matches" in client.get(f"/stories/{story.pk}/?q=nobody").content.decode()


def test_delivery_progress_is_one_aggregate_for_the_owner_only(client, user, story, other_user, django_assert_max_num_queries):
    client.force_login(user)
    with django_assert_max_num_queries(8):
        body = client.get(f"/api/v1/stories/{story.pk}/invitations/progress/").json()
    job = body.pop("batch_job")
    assert body == {"total": 30, "waiting": 0, "done": 30}
    # The invitation batch's job: 30 invitees, every one reached.
    assert (job["status"], job["total_count"], job["processed_count"], job["success_count"]) == ("completed", 30, 30, 30)
    client.force_login(other_user)
    assert client.get(f"/api/v1/stories/{story.pk}/invitations/progress/").status_code == 404


def test_copy_link_and_send_again_issue_a_new_link_and_the_old_one_stops(client, user, story, django_capture_on_commit_callbacks):
    client.force_login(user)
    invitation = StoryInvitation.objects.get(invitee_email="guest03@example.com")
    old_link = re.search(r"(/i/[A-Za-z0-9_-]+)", next(m for m in mail.outbox if m.to == ["guest03@example.com"]).body).group(1)
    assert client.get(old_link).status_code == 200

    copied = client.post(f"/api/v1/invitations/{invitation.pk}/reissue/", {"send": False}, content_type="application/json").json()
    new_link = copied["invite_url"].removeprefix("http://testserver")
    assert client.get(old_link).status_code == 404 and client.get(new_link).status_code == 200
    before = len(mail.outbox)

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(f"/api/v1/invitations/{invitation.pk}/reissue/", {"send": True}, content_type="application/json")
    assert sent.status_code == 200
    assert [m.to for m in mail.outbox[before:]] == [["guest03@example.com"]]
    assert sent.json()["invite_url"].removeprefix("http://testserver") in mail.outbox[-1].body
    assert client.get(new_link).status_code == 404
    assert InvitationHistory.objects.filter(invitation=invitation, action=HistoryAction.LINK_REISSUED).count() == 2
    assert client.post(f"/api/v1/invitations/{invitation.pk}/reissue/", {"send": "yes"}, content_type="application/json").status_code == 400


def test_only_the_inviter_and_only_pending_invitations_get_a_new_link(client, user, story):
    invitation = StoryInvitation.objects.get(invitee_email="guest04@example.com")
    client.force_login(UserFactory())
    assert client.post(f"/api/v1/invitations/{invitation.pk}/reissue/", {}, content_type="application/json").status_code == 404
    invitation_accept(invitation_id=invitation.pk)
    client.force_login(user)
    refused = client.post(f"/api/v1/invitations/{invitation.pk}/reissue/", {"send": True}, content_type="application/json")
    assert refused.status_code == 409 and "already accepted" in refused.json()["detail"]


def test_re_inviting_someone_who_accepted_is_refused_clearly(client, user, story):
    invitation = StoryInvitation.objects.get(invitee_email="guest05@example.com")
    invitation_accept(invitation_id=invitation.pk)
    client.force_login(user)
    before = StoryInvitation.objects.count()

    response = client.post(f"/api/v1/stories/{story.pk}/invitations/", {"invitations": [
        {"email": "new@example.com", "conversation_style": "jovial"},
        {"email": "GUEST05@example.com", "conversation_style": "jovial"},
    ]}, content_type="application/json")

    assert response.status_code == 400
    assert "already accepted an invitation to this story" in str(response.json()["invitations"]["1"])
    assert StoryInvitation.objects.count() == before

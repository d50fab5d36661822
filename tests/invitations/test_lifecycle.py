"""List, change style, revoke, read by token, accept, decline."""
from __future__ import annotations

import pytest
from django.utils import timezone

from invitations.models import (
    HistoryAction,
    InvitationHistory,
    InvitationStatus,
    StoryInvitation,
)
from narrations.models import NarrationStatus, StoryNarration
from notifications.enums import DeliveryStatus
from notifications.models import NotificationDelivery

from .conftest import invite_url, people

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def sent(auth_client, story):
    response = auth_client.post(
        invite_url(story.pk),
        {"invitations": people(2, "jovial") + people(1, "business", prefix="b")},
        format="json",
    )
    assert response.status_code == 201
    return response.json()["invitations"]


def token_of(invitation: dict) -> str:
    return invitation["invite_url"].rsplit("/i/", 1)[1]


def by_token(token: str, action: str = "") -> str:
    return f"/api/v1/invitations/by-token/{token}/" + (f"{action}/" if action else "")


def test_list_shows_status_and_delivery_per_channel(phone_consent, auth_client, story, django_capture_on_commit_callbacks, django_assert_max_num_queries):
    body = {"invitations": [{"email": "a@example.com", "conversation_style": "jovial"},
                            {"phone": "+14155550100", "conversation_style": "jovial"},
                            {"email": "b@example.com", "phone": "+14155550101", "conversation_style": "business"}]}
    with django_capture_on_commit_callbacks() as callbacks:
        auth_client.post(invite_url(story.pk), body, format="json")
    # Committed but not yet handed to the notification platform: every channel is pending.
    rows = {r["email"] or r["phone"]: r for r in auth_client.get(invite_url(story.pk)).json()}
    assert rows["b@example.com"]["deliveries"] == {"EMAIL": "pending", "SMS": "pending"}

    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    with django_assert_max_num_queries(4):
        response = auth_client.get(invite_url(story.pk))
    assert response.status_code == 200
    rows = {r["email"] or r["phone"]: r for r in response.json()}
    # The log SMS provider reports delivery at once; the email backend only says "sent".
    assert rows["a@example.com"]["deliveries"] == {"EMAIL": "sent"}
    assert rows["+14155550100"]["deliveries"] == {"SMS": "delivered"}
    assert rows["b@example.com"]["deliveries"] == {"EMAIL": "sent", "SMS": "delivered"}
    assert {r["status"] for r in rows.values()} == {"pending"}
    assert all("token" not in key for r in rows.values() for key in r)

    # The status is the delivery row's: a bounce reported by the provider shows up as such.
    b = StoryInvitation.objects.get(invitee_email="b@example.com")
    NotificationDelivery.objects.filter(notification=b.notification, channel="EMAIL").update(status=DeliveryStatus.BOUNCED)
    row = next(r for r in auth_client.get(invite_url(story.pk)).json() if r["email"] == "b@example.com")
    assert row["deliveries"] == {"EMAIL": "bounced", "SMS": "delivered"}


def test_list_query_count_is_fixed(auth_client, story, django_assert_max_num_queries, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.post(invite_url(story.pk), {"invitations": people(60)}, format="json")
    with django_assert_max_num_queries(4):
        rows = auth_client.get(invite_url(story.pk)).json()
    assert len(rows) == 60 and {r["deliveries"]["EMAIL"] for r in rows} == {"sent"}


def test_change_style_moves_to_the_styles_shared_row(auth_client, story, sent, django_capture_on_commit_callbacks):
    jovial_row = sent[0]["narration_id"]
    business_row = sent[2]["narration_id"]
    response = auth_client.patch(f"/api/v1/invitations/{sent[0]['id']}/", {"conversation_style": "business"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["conversation_style"] == "business"
    assert response.json()["narration_id"] == business_row
    assert StoryNarration.objects.filter(story=story).count() == 2

    # A style nobody had yet gets its own row, pre-generated after commit.
    with django_capture_on_commit_callbacks() as callbacks:
        response = auth_client.patch(f"/api/v1/invitations/{sent[1]['id']}/", {"conversation_style": "siblings"}, format="json")
    siblings = StoryNarration.objects.get(story=story, conversation_style="siblings", user__isnull=True)
    assert response.json()["narration_id"] == siblings.pk != jovial_row
    assert len(callbacks) == 1
    history = InvitationHistory.objects.filter(invitation_id=sent[1]["id"], action=HistoryAction.STYLE_CHANGED).get()
    assert history.data["from"] == "jovial" and history.data["to"] == "siblings"


def test_change_style_validation_conflict_and_scope(auth_client, other_user, sent):
    url = f"/api/v1/invitations/{sent[0]['id']}/"
    assert auth_client.patch(url, {"conversation_style": "grumpy"}, format="json").status_code == 400
    assert auth_client.patch(url, {}, format="json").status_code == 400
    from rest_framework.test import APIClient

    stranger = APIClient()
    stranger.force_authenticate(other_user)
    assert stranger.patch(url, {"conversation_style": "business"}, format="json").status_code == 404
    assert stranger.post(url + "revoke/").status_code == 404
    assert StoryInvitation.objects.get(pk=sent[0]["id"]).conversation_style == "jovial"

    auth_client.post(by_token(token_of(sent[0]), "decline"))
    response = auth_client.patch(url, {"conversation_style": "business"}, format="json")
    assert response.status_code == 409


def test_revoke_makes_the_link_gone(auth_client, api_client, sent):
    token = token_of(sent[0])
    response = auth_client.post(f"/api/v1/invitations/{sent[0]['id']}/revoke/")
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert auth_client.post(f"/api/v1/invitations/{sent[0]['id']}/revoke/").status_code == 200  # idempotent
    assert InvitationHistory.objects.filter(invitation_id=sent[0]["id"], action=HistoryAction.REVOKED).count() == 1
    assert api_client.get(by_token(token)).status_code == 410
    assert api_client.post(by_token(token, "accept")).status_code == 410
    assert api_client.post(by_token(token, "decline")).status_code == 410


def test_read_by_token_records_one_view(api_client, sent, user, story):
    token = token_of(sent[2])
    first = api_client.get(by_token(token))
    assert first.status_code == 200
    body = first.json()
    assert body["story"] == {"id": story.pk, "title": story.title}
    assert body["inviter"] == {"display_name": user.get_display_name()}
    assert body["conversation_style"] == "business"
    assert body["status"] == "pending"
    assert body["narration"]["id"] == sent[2]["narration_id"]
    assert body["narration"]["status"] == NarrationStatus.PENDING
    api_client.get(by_token(token))
    assert InvitationHistory.objects.filter(invitation_id=sent[2]["id"], action=HistoryAction.VIEWED).count() == 1


def test_unknown_token_is_404_and_expired_is_410(api_client, sent):
    assert api_client.get(by_token("x" * 43)).status_code == 404
    assert api_client.post(by_token("nope", "accept")).status_code == 404
    StoryInvitation.objects.filter(pk=sent[0]["id"]).update(expires_at=timezone.now())
    response = api_client.get(by_token(token_of(sent[0])))
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]
    assert api_client.post(by_token(token_of(sent[0]), "accept")).status_code == 410


def test_accept_generates_the_narration_and_is_idempotent(api_client, sent):
    token = token_of(sent[0])
    response = api_client.post(by_token(token, "accept"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "accepted"
    narration = body["narration"]
    assert narration["id"] == sent[0]["narration_id"]
    assert narration["conversation_style"] == "jovial"
    assert narration["status"] == "ready"
    assert narration["segments"] and {"index", "speaker", "text", "audio_url", "duration_ms"} <= set(narration["segments"][0])
    assert any(s["speaker"] == "Mara" for s in narration["segments"])

    again = api_client.post(by_token(token, "accept"))
    assert again.status_code == 200 and again.json() == body
    invitation = StoryInvitation.objects.get(pk=sent[0]["id"])
    assert invitation.status == InvitationStatus.ACCEPTED and invitation.accepted_at is not None
    assert invitation.history.filter(action=HistoryAction.ACCEPTED).count() == 1
    assert StoryNarration.objects.get(pk=narration["id"]).attempts == 1

    # The second invitee of the same style gets the already generated row.
    other = api_client.post(by_token(token_of(sent[1]), "accept"))
    assert other.json()["narration"] == narration
    assert StoryNarration.objects.get(pk=narration["id"]).attempts == 1
    # The accepted link still reads fine, and after accepting, decline is a conflict.
    assert api_client.get(by_token(token)).json()["status"] == "accepted"
    assert api_client.post(by_token(token, "decline")).status_code == 409


def test_decline(api_client, sent):
    token = token_of(sent[1])
    response = api_client.post(by_token(token, "decline"))
    assert response.status_code == 200 and response.json()["status"] == "declined"
    # Every invitation answer names its content (API.md "Content beyond stories").
    assert {k: response.json()[k] for k in ("invitation_type", "content_type", "content_id")} == {
        "invitation_type": "story_collaboration", "content_type": "story", "content_id": sent[1]["content_id"]}
    assert api_client.post(by_token(token, "decline")).json()["status"] == "declined"
    assert api_client.post(by_token(token, "accept")).status_code == 409
    invitation = StoryInvitation.objects.get(pk=sent[1]["id"])
    assert invitation.status == InvitationStatus.DECLINED and invitation.declined_at is not None
    assert invitation.history.filter(action=HistoryAction.DECLINED).count() == 1


def test_token_endpoints_need_no_session_nor_csrf(auth_client, sent):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(StoryInvitation.objects.get(pk=sent[0]["id"]).inviter)
    assert browser.post(by_token(token_of(sent[0]), "decline")).status_code == 200


def test_expire_due_marks_lapsed_pending_invitations(sent):
    from invitations.services import invitations_expire_due

    StoryInvitation.objects.filter(pk=sent[0]["id"]).update(expires_at=timezone.now())
    assert invitations_expire_due() == 1
    assert StoryInvitation.objects.get(pk=sent[0]["id"]).status == InvitationStatus.EXPIRED
    assert invitations_expire_due() == 0

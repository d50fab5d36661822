"""Invitations go out through the notification platform: one event per batch, each invitee
their own link by email and SMS, the inviter told of an acceptance, the status read back."""
from __future__ import annotations

import pytest

from invitations.models import StoryInvitation, hash_token
from invitations.notify import invitations_notify_sent
from invitations.services import invitations_send
from notifications.enums import Channel, DeliveryStatus
from notifications.models import EventType, Notification, NotificationDelivery
from providers.models import ProviderOutbox

from .conftest import invite_url, people

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _post(client, story, body, capture):
    with capture(execute=True):
        response = client.post(invite_url(story.pk), body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["invitations"]


def test_each_invitee_gets_their_own_link_by_email_or_sms(
    phone_consent, auth_client, story, user, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://troubadour.example"
    sent = _post(
        auth_client, story,
        {"message": "Made this for you two.",
         "invitations": [{"email": "ada@example.com", "conversation_style": "close_friends"},
                         {"email": "bob@example.com", "conversation_style": "business", "message": "Bob, a special one."},
                         {"phone": "+14155550100", "conversation_style": "business"}]},
        django_capture_on_commit_callbacks,
    )
    links = {i["email"] or i["phone"]: i["invite_url"] for i in sent}

    # One event for the whole batch, one notification per invitee, tied back to its invitation.
    notifications = Notification.objects.filter(event_type="story.invitation")
    assert notifications.values("event_id").distinct().count() == 1
    assert notifications.count() == 3
    for invitation in StoryInvitation.objects.all():
        assert invitation.notification.resource_type == "story_invitation"
        assert invitation.notification.resource_id == str(invitation.pk)
        assert invitation.notification.organization_id == user.memberships.get().organization_id

    assert len(mailoutbox) == 2
    by_recipient = {m.to[0]: m for m in mailoutbox}
    ada = by_recipient["ada@example.com"]
    assert user.get_display_name() in ada.subject and story.title in ada.subject
    assert links["ada@example.com"].startswith("https://troubadour.example/i/")
    assert links["ada@example.com"] in ada.body and links["bob@example.com"] not in ada.body
    assert "Made this for you two." in ada.body
    assert "close friends" in ada.body
    html, mimetype = ada.alternatives[0]
    assert mimetype == "text/html" and links["ada@example.com"] in html
    assert "Bob, a special one." in by_recipient["bob@example.com"].body
    assert links["bob@example.com"] in by_recipient["bob@example.com"].body

    # The phone invitee gets an SMS through the platform (the log provider records it).
    sms = ProviderOutbox.objects.get(channel=Channel.SMS)
    assert sms.to == "+14155550100" and links["+14155550100"] in sms.text
    phone_invitation = StoryInvitation.objects.get(invitee_phone="+14155550100")
    assert NotificationDelivery.objects.get(notification=phone_invitation.notification, channel=Channel.SMS).status == (
        DeliveryStatus.DELIVERED
    )

    # Only the hash is stored; the token travels in the messages only.
    token = links["ada@example.com"].rsplit("/", 1)[1]
    assert StoryInvitation.objects.get(invitee_email="ada@example.com").token_hash == hash_token(token)


def test_invitee_language_picks_the_template_and_unknown_ones_fall_back(
    auth_client, story, mailoutbox, django_capture_on_commit_callbacks
):
    _post(
        auth_client, story,
        {"invitations": [{"email": "fr@example.com", "conversation_style": "jovial", "locale": "fr-CA"},
                         {"email": "de@example.com", "conversation_style": "jovial", "locale": "de"}]},
        django_capture_on_commit_callbacks,
    )
    subjects = {m.to[0]: m.subject for m in mailoutbox}
    assert "vous invite" in subjects["fr@example.com"]
    assert "invited you" in subjects["de@example.com"]  # no German templates: the platform's default


def test_a_failing_mail_server_leaves_the_email_retrying_not_the_request_failing(
    auth_client, story, settings, django_capture_on_commit_callbacks
):
    # A real SMTP peer that refuses connections: nothing listens on this loopback port.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    _post(auth_client, story, {"invitations": [{"email": "ada@example.com", "conversation_style": "jovial"}]},
          django_capture_on_commit_callbacks)
    delivery = NotificationDelivery.objects.get(notification__event_type="story.invitation", channel=Channel.EMAIL)
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_retry_at is not None and delivery.attempts == 1
    assert auth_client.get(invite_url(story.pk)).json()[0]["deliveries"] == {"EMAIL": "retrying"}


def test_a_batch_the_platform_refuses_still_creates_the_invitations(
    auth_client, story, mailoutbox, django_capture_on_commit_callbacks
):
    EventType.objects.filter(key="story.invitation").update(is_active=False)
    _post(auth_client, story, {"invitations": people(2)}, django_capture_on_commit_callbacks)
    assert StoryInvitation.objects.count() == 2 and not Notification.objects.exists()
    assert mailoutbox == []
    assert [row["deliveries"] for row in auth_client.get(invite_url(story.pk)).json()] == [{"EMAIL": "pending"}] * 2


def test_notifying_twice_sends_once(story, user, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = invitations_send(story=story, inviter=user, items=people(2))
    assert len(mailoutbox) == 2
    with django_capture_on_commit_callbacks(execute=True):
        again = invitations_notify_sent(invitation_ids=[i.pk for i in result.invitations], tokens=result.tokens)
    assert again == {}
    assert len(mailoutbox) == 2 and Notification.objects.filter(event_type="story.invitation").count() == 2


def test_accepting_notifies_the_inviter_once(auth_client, client, story, user, mailoutbox, django_capture_on_commit_callbacks):
    sent = _post(auth_client, story, {"invitations": people(1)}, django_capture_on_commit_callbacks)
    token = sent[0]["invite_url"].rsplit("/i/", 1)[1]
    mailoutbox.clear()
    for _ in range(2):  # accepting again is idempotent: no second notification
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(f"/api/v1/invitations/by-token/{token}/accept/").status_code == 200

    accepted = Notification.objects.get(event_type="story.invitation_accepted")
    assert accepted.recipient_id == user.pk
    assert accepted.deduplication_key == f"invitation-accepted:{sent[0]['id']}"
    assert (accepted.resource_type, accepted.resource_id) == ("story_invitation", str(sent[0]["id"]))
    assert accepted.action_url.endswith(f"/stories/{story.pk}/")
    # In the inviter's inbox, and by email.
    inbox = auth_client.get("/api/v1/notifications/").json()
    items = inbox["results"] if isinstance(inbox, dict) else inbox
    assert [n["id"] for n in items if n["id"] == accepted.pk]
    assert set(accepted.deliveries.values_list("channel", flat=True)) == {Channel.IN_APP, Channel.EMAIL}
    assert [m.to for m in mailoutbox] == [[user.email]]
    assert "guest0@example.com" in mailoutbox[0].subject

"""The invitation email: link, message, inviter and style; phone invitees recorded as undeliverable."""
from __future__ import annotations

import pytest

from invitations.models import StoryInvitation, hash_token

from .conftest import invite_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_each_email_invitee_gets_the_link(auth_client, story, user, settings, mailoutbox, django_capture_on_commit_callbacks):
    settings.SITE_URL = "https://troubadour.example"
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(
            invite_url(story.pk),
            {"message": "Made this for you two.",
             "invitations": [{"email": "ada@example.com", "conversation_style": "close_friends"},
                             {"email": "bob@example.com", "conversation_style": "business", "message": "Bob, a special one."},
                             {"phone": "+14155550100", "conversation_style": "business"}]},
            format="json",
        )
    assert response.status_code == 201
    links = {i["email"]: i["invite_url"] for i in response.json()["invitations"] if i["email"]}
    assert len(mailoutbox) == 2
    by_recipient = {m.to[0]: m for m in mailoutbox}
    ada = by_recipient["ada@example.com"]
    assert user.get_display_name() in ada.subject and story.title in ada.subject
    assert links["ada@example.com"] in ada.body
    assert links["ada@example.com"].startswith("https://troubadour.example/i/")
    assert "Made this for you two." in ada.body
    assert "close friends" in ada.body
    html, mimetype = ada.alternatives[0]
    assert mimetype == "text/html" and links["ada@example.com"] in html
    assert "Bob, a special one." in by_recipient["bob@example.com"].body

    # Only the hash is stored; the token only travels in the email.
    token = links["ada@example.com"].rsplit("/", 1)[1]
    stored = StoryInvitation.objects.get(invitee_email="ada@example.com")
    assert stored.token_hash == hash_token(token) and stored.deliveries == {"EMAIL": "sent"}
    assert StoryInvitation.objects.get(invitee_phone="+14155550100").deliveries == {"SMS": "not_deliverable"}


def test_a_failing_mail_server_is_recorded_not_raised(auth_client, story, settings, django_capture_on_commit_callbacks):
    # A real SMTP peer that refuses connections: nothing listens on this loopback port.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(
            invite_url(story.pk), {"invitations": [{"email": "ada@example.com", "conversation_style": "jovial"}]},
            format="json",
        )
    assert response.status_code == 201
    assert StoryInvitation.objects.get().deliveries == {"EMAIL": "failed"}

"""Sign-up, address verification and password reset, with their emails sent through the platform's providers."""
from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import Membership, MembershipRole, User
from invitations.models import StoryInvitation
from invitations.services import invitations_send
from narrations.services import story_create
from notifications.models import Notification
from providers.models import SuppressedAddress, SuppressionReason

from ..factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SIGNUP = {
    "username": "ada", "email": "Ada@Example.com", "display_name": "Ada Lovelace",
    "password1": "analytical-engine-42", "password2": "analytical-engine-42",
}


def _link(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def test_signup_signs_in_at_once_and_creates_a_personal_organization(client, settings):
    settings.SITE_URL = "http://testserver"
    response = client.post("/accounts/signup/", SIGNUP)

    assert response.status_code == 302 and response["Location"] == "/me/profile/"
    user = User.objects.get(username="ada")
    assert user.email == "ada@example.com" and user.is_active and user.display_name == "Ada Lovelace"
    membership = Membership.objects.get(user=user)
    assert membership.role == MembershipRole.OWNER and "Ada Lovelace" in membership.organization.name
    assert client.get("/me/profile/").status_code == 200  # signed in
    # optional verification (the default): a confirmation link went out through the providers
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]
    assert mail.outbox[0].extra_headers.get("X-Troubadour-Delivery", "").startswith("account-verify_email-")
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers
    assert user.email_verified_at is None

    client.get(_link(mail.outbox[0]).removeprefix("http://testserver"))
    user.refresh_from_db()
    assert user.email_verified_at is not None


def test_signup_refuses_taken_names_weak_passwords_and_saves_nothing(client):
    UserFactory(username="ada", email="someone@example.com")
    UserFactory(username="grace", email="ada@example.com")
    before = User.objects.count()

    taken = client.post("/accounts/signup/", {**SIGNUP, "username": "ADA"})
    assert taken.status_code == 400
    assert "This username is taken." in taken.content.decode()
    assert "already uses this email" in taken.content.decode()
    weak = client.post("/accounts/signup/", {**SIGNUP, "username": "new", "email": "new@example.com",
                                             "password1": "12345678", "password2": "12345678"})
    assert weak.status_code == 400 and "too common" in weak.content.decode()
    differ = client.post("/accounts/signup/", {**SIGNUP, "username": "new", "email": "new@example.com", "password2": "x"})
    assert differ.status_code == 400 and "differ" in differ.content.decode()
    assert User.objects.count() == before
    assert mail.outbox == []


def test_mandatory_verification_opens_the_account_only_through_the_link(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    settings.SITE_URL = "http://testserver"
    response = client.post("/accounts/signup/", SIGNUP)
    assert response.status_code == 200 and b"Check your email" in response.content
    user = User.objects.get(username="ada")
    assert not user.is_active
    assert not client.login(username="ada", password=SIGNUP["password1"])

    tampered = _link(mail.outbox[0])[:-3] + "abc/"
    assert client.get(tampered.removeprefix("http://testserver")).status_code == 400
    assert client.get(_link(mail.outbox[0]).removeprefix("http://testserver")).status_code == 200
    user.refresh_from_db()
    assert user.is_active and user.email_verified_at is not None
    assert client.login(username="ada", password=SIGNUP["password1"])


def test_signup_with_verification_off_sends_nothing(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    assert client.post("/accounts/signup/", SIGNUP).status_code == 302
    assert mail.outbox == []


def test_password_reset_through_the_platform_email_then_the_link_works_once(client, settings):
    settings.SITE_URL = "http://testserver"
    user = UserFactory(username="ada", email="ada@example.com")

    response = client.post("/accounts/password-reset/", {"email": "ADA@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/done/"
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "Reset your Troubadour password"
    assert "X-Troubadour-Delivery" in mail.outbox[0].extra_headers  # sent by the platform's email provider
    # the link is not kept anywhere: no notification carries it
    link = _link(mail.outbox[0]).removeprefix("http://testserver")
    assert not Notification.objects.exists()

    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and b"Choose a new password" in form_page.content
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": "brand-new-secret-7", "new_password2": "brand-new-secret-7"})
    assert done.status_code == 302
    assert client.login(username="ada", password="brand-new-secret-7")
    client.logout()
    # and the account's owner is told, in the app and by email
    assert Notification.objects.get(recipient=user, event_type="security.password_changed")
    again = client.get(link, follow=True)
    assert b"This link does not work" in again.content
    user.refresh_from_db()
    assert user.check_password("brand-new-secret-7")


def test_password_reset_answers_the_same_for_unknown_and_suppressed_addresses(client):
    UserFactory(username="bob", email="bob@example.com")
    SuppressedAddress.objects.create(address="bob@example.com", channel="EMAIL", reason=SuppressionReason.HARD_BOUNCE)

    unknown = client.post("/accounts/password-reset/", {"email": "nobody@example.com"})
    suppressed = client.post("/accounts/password-reset/", {"email": "bob@example.com"})

    assert unknown.status_code == suppressed.status_code == 302
    assert unknown["Location"] == suppressed["Location"]
    assert mail.outbox == []  # the platform honours its suppression list for account emails too


def test_a_staff_created_user_without_organization_really_sends_invitations(settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"
    loner = UserFactory(username="loner")
    assert not Membership.objects.filter(user=loner).exists()
    story = story_create(owner=loner, title="Alone", content="Once upon a time.", characters=[])

    with django_capture_on_commit_callbacks(execute=True):
        invitations_send(story=story, inviter=loner, items=[{"email": "friend@example.com", "conversation_style": "jovial"}])

    invitation = StoryInvitation.objects.get()
    assert invitation.notification_id is not None
    assert Membership.objects.get(user=loner).role == MembershipRole.OWNER
    assert [m.to for m in mail.outbox] == [["friend@example.com"]]


def test_password_reset_emails_are_limited_per_address_with_a_clear_answer(client):
    UserFactory(username="ada", email="ada@example.com")
    for _ in range(5):
        assert client.post("/accounts/password-reset/", {"email": "ada@example.com"}).status_code == 302
    refused = client.post("/accounts/password-reset/", {"email": "ADA@example.com"})

    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 3600
    assert "already sent several links to this address" in refused.content.decode()
    assert len(mail.outbox) == 5
    # An address without an account is answered the same way: the limit tells nothing about accounts.
    for _ in range(5):
        client.post("/accounts/password-reset/", {"email": "nobody@example.com"})
    assert client.post("/accounts/password-reset/", {"email": "nobody@example.com"}).status_code == 429
    # Another address is not held back by Ada's.
    assert client.post("/accounts/password-reset/", {"email": "bea@example.com"}).status_code == 302


def test_password_reset_requests_are_limited_per_client_address(client, settings):
    settings.PASSWORD_RESET_LIMIT_PER_IP = 3
    for n in range(3):
        assert client.post("/accounts/password-reset/", {"email": f"p{n}@example.com"}).status_code == 302
    refused = client.post("/accounts/password-reset/", {"email": "p9@example.com"})
    assert refused.status_code == 429
    assert "Too many password reset requests from your network" in refused.content.decode()


def test_signups_are_limited_per_client_address_with_a_clear_error(client, settings):
    settings.SIGNUP_LIMIT_PER_IP = 2
    for n in range(2):
        response = client.post("/accounts/signup/", {**SIGNUP, "username": f"ada{n}", "email": f"ada{n}@example.com"})
        assert response.status_code == 302
        client.logout()

    refused = client.post("/accounts/signup/", {**SIGNUP, "username": "ada9", "email": "ada9@example.com"},
                          REMOTE_ADDR="127.0.0.1")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many accounts were created from your network" in refused.content.decode()
    assert 'value="ada9"' in refused.content.decode()  # what was typed stays in the form
    assert not User.objects.filter(username="ada9").exists()
    # Another client address signs up.
    other = client.post("/accounts/signup/", {**SIGNUP, "username": "cy", "email": "cy@example.com"}, REMOTE_ADDR="10.0.0.7")
    assert other.status_code == 302 and User.objects.filter(username="cy").exists()

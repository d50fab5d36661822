"""Invitees who are not users: stop invitations (page and one-click), SMS STOP, suppression honoured at
intake with a trace reason, opt-in for phone channels, and the inviter hearing of declines."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from twilio.request_validator import RequestValidator

from invitations.models import InviteeOptOut, StoryInvitation
from invitations.services import invitation_decline, invitations_send
from narrations.services import story_create
from notifications.enums import Channel, DeliveryStatus
from notifications.models import ChannelConfiguration, Notification, NotificationDelivery
from notifications.services import event_emit
from providers.models import SuppressedAddress

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _inline(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    def _send(inviter, items, title="The Lighthouse"):
        story = story_create(owner=inviter, title=title, content="The lamp had not been lit for years.", characters=[])
        with django_capture_on_commit_callbacks(execute=True):
            return invitations_send(story=story, inviter=inviter, items=items)
    return _send


def _stop_link(message) -> str:
    return re.search(r"Stop them: (http://testserver(/u/stop/[^/\s]+/))", message.body).group(2)


def test_invitation_emails_carry_one_click_unsubscribe_and_a_footer_link(user, send):
    send(user, [{"email": "bea@example.com", "conversation_style": "jovial"}])

    message = mail.outbox[-1]
    path = _stop_link(message)
    assert message.extra_headers["List-Unsubscribe"] == f"<http://testserver{path}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f'href="http://testserver{path}"' in message.alternatives[0][0]
    page = Client().get(path)
    assert page.status_code == 200 and b"Stop invitations from" in page.content
    assert not InviteeOptOut.objects.exists()  # looking changes nothing (mail scanners fetch links)


def test_stopping_one_inviter_leaves_the_others(user, other_user, send):
    send(user, [{"email": "bea@example.com", "conversation_style": "jovial"}])
    response = Client(enforce_csrf_checks=True).post(_stop_link(mail.outbox[-1]), {"scope": "inviter"})
    assert response.status_code == 200 and b"can no longer invite" in response.content

    again = send(user, [{"email": "BEA@example.com", "conversation_style": "jovial"}], title="Second")
    assert again.invitations == [] and [(s.reason, s.email) for s in again.skipped] == [("opted_out", "bea@example.com")]
    other = send(other_user, [{"email": "bea@example.com", "conversation_style": "jovial"}])
    assert len(other.invitations) == 1


def test_one_click_post_stops_this_inviter_and_platform_scope_stops_everyone(user, other_user, send):
    send(user, [{"email": "bea@example.com", "conversation_style": "jovial"}])
    path = _stop_link(mail.outbox[-1])
    # RFC 8058: the mail client posts this body, without cookies or a CSRF token
    assert Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert InviteeOptOut.objects.get().source == "one_click"

    Client().post(path, {"scope": "platform"})
    assert send(other_user, [{"email": "bea@example.com", "conversation_style": "jovial"}]).skipped[0].reason == "opted_out"


def test_forged_or_bad_links_are_refused(client):
    assert client.get("/u/stop/not-a-token/").status_code == 400
    assert client.post("/u/stop/not-a-token/", {"scope": "platform"}).status_code == 400
    assert not InviteeOptOut.objects.exists()


def _inbound(client, body: str, number: str = "+14155550100"):
    url = "https://troubadour.test" + reverse("twilio-sms-inbound")
    params = {"From": number, "Body": body, "AccountSid": "AC123", "MessageSid": "SM1"}
    signature = RequestValidator("sms-inbound-secret").compute_signature(url, params)
    return client.post(url.replace("https://troubadour.test", ""), params, HTTP_X_TWILIO_SIGNATURE=signature)


def test_sms_stop_suppresses_the_number_at_intake_with_a_trace_reason_and_start_lifts_it(
    monkeypatch, settings, user, organization, send
):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "sms-inbound-secret")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")  # the platform's own account
    settings.SITE_URL = "https://troubadour.test"
    client = Client()
    forged = client.post("/webhooks/twilio/sms/inbound/", {"From": "+14155550100", "Body": "STOP"}, HTTP_X_TWILIO_SIGNATURE="x")
    assert forged.status_code == 403 and not SuppressedAddress.objects.exists()

    assert _inbound(client, " stop ").status_code == 200
    assert set(SuppressedAddress.objects.values_list("channel", flat=True)) == {"SMS", "WHATSAPP", "VOICE"}

    result = event_emit(organization=organization, type="task.assigned", channels=["SMS"],
                        recipients=[{"phone": "+1 415 555 0100"}], data={"taskTitle": "Fix login"})
    delivery = NotificationDelivery.objects.get(notification_id=result.notifications[0][0])
    assert delivery.status == DeliveryStatus.SKIPPED and "suppression list" in delivery.skip_reason
    trace = Notification.objects.get(pk=result.notifications[0][0]).trace
    assert {"check": "suppression", "result": "fail", "reason": "UNSUBSCRIBE"} in trace["SMS"]["steps"], trace
    skipped = send(user, [{"phone": "+14155550100", "conversation_style": "jovial"}])
    assert skipped.skipped[0].reason == "opted_out"

    assert _inbound(client, "START").status_code == 200
    assert not SuppressedAddress.objects.exists() and not InviteeOptOut.objects.exists()
    assert len(send(user, [{"phone": "+14155550100", "conversation_style": "jovial"}], title="Again").invitations) == 1


def test_sms_keywords_other_than_stop_and_start_are_left_to_acknowledgments(monkeypatch, settings):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "sms-inbound-secret")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")  # the platform's own account
    settings.SITE_URL = "https://troubadour.test"
    assert _inbound(Client(), "please stop calling me at night").status_code == 200
    assert not SuppressedAddress.objects.exists()


def _sms_by_address(organization, user, channels=("SMS",), type="task.assigned"):
    result = event_emit(organization=organization, type=type, channels=list(channels),
                        recipient_ids=[user.pk], recipients=[{"phone": "+14155550100"}], data={"taskTitle": "Fix login"})
    ids = [n[0] for n in result.notifications]
    return {(d.recipient_address, d.channel): d for d in NotificationDelivery.objects.filter(notification_id__in=ids)}


def test_bare_numbers_get_no_sms_whatsapp_or_voice_unless_the_configuration_says_consent_is_given(organization, user):
    user.phone = "+14155550199"
    user.save()

    # The seed's default (004 §4.2 requiresOptIn: true): refused at intake, with the reason in the trace.
    deliveries = _sms_by_address(organization, user, channels=("SMS", "WHATSAPP", "VOICE"), type="incident.created")
    for channel in ("SMS", "WHATSAPP", "VOICE"):
        bare = deliveries[("+14155550100", channel)]
        assert bare.status == DeliveryStatus.SKIPPED and "consent" in bare.skip_reason, channel
        assert {"check": "consent", "result": "fail", "requires_opt_in": True, "configuration": "default"} in \
            bare.notification.trace[channel]["steps"], channel
        assert "consent" not in deliveries[("+14155550199", channel)].skip_reason, channel  # a member who gave their number

    # The platform's configuration says consent is given: bare numbers are reached.
    ChannelConfiguration.objects.create(organization=None, channel=Channel.SMS, settings={"requiresOptIn": False})
    assert _sms_by_address(organization, user)[("+14155550100", "SMS")].skip_reason == ""
    # The organization's own configuration says otherwise: it wins over the platform's.
    ChannelConfiguration.objects.create(organization=organization, channel=Channel.SMS, settings={"requiresOptIn": True})
    assert "consent" in _sms_by_address(organization, user)[("+14155550100", "SMS")].skip_reason
    # A configuration that does not mention it keeps the seed's default.
    ChannelConfiguration.objects.filter(organization=organization).update(settings={"note": "ours"})
    assert "consent" in _sms_by_address(organization, user)[("+14155550100", "SMS")].skip_reason


def test_the_inviter_hears_of_a_decline(user, organization, send, django_capture_on_commit_callbacks):
    result = send(user, [{"email": "bea@example.com", "conversation_style": "jovial"}])
    with django_capture_on_commit_callbacks(execute=True):
        invitation_decline(invitation_id=result.invitations[0].pk)

    notification = Notification.objects.get(recipient=user, event_type="story.invitation_declined")
    assert notification.resource_id == str(result.invitations[0].pk)
    assert "declined your invitation" in notification.deliveries.get(channel=Channel.EMAIL).rendered["subject"]
    invitation_decline(invitation_id=result.invitations[0].pk)  # declining twice tells nobody twice
    assert Notification.objects.filter(recipient=user, event_type="story.invitation_declined").count() == 1
    assert StoryInvitation.objects.get().status == "declined"


def test_a_stop_signed_by_an_organizations_own_account_silences_the_number_for_that_organization_only(
    phone_consent, settings, organization, other_user
):
    from cryptography.fernet import Fernet

    from providers.services import provider_create

    settings.SITE_URL = "https://troubadour.test"
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    record = provider_create(organization_id=organization.pk, code="twilio_sms", name="Our Twilio", priority=0,
                             config={"from_number": "+14155550111"}, secrets={"account_sid": "ACorg", "auth_token": "org-token"})
    result = event_emit(organization=organization, type="task.assigned", channels=["SMS"], recipients=[{"phone": "+14155550100"}],
                        data={"taskTitle": "Fix login"})
    NotificationDelivery.objects.filter(notification_id=result.notifications[0][0]).update(
        status="SENT", provider="twilio_sms", provider_record=record)
    url = "https://troubadour.test" + reverse("twilio-sms-inbound")
    params = {"From": "+14155550100", "Body": "STOP", "AccountSid": "ACorg", "MessageSid": "SM2"}
    response = Client().post(url.replace("https://troubadour.test", ""), params,
                             HTTP_X_TWILIO_SIGNATURE=RequestValidator("org-token").compute_signature(url, params))

    assert response.status_code == 200
    assert set(SuppressedAddress.objects.values_list("organization_id", flat=True)) == {organization.pk}
    assert not InviteeOptOut.objects.exists()  # not a platform-wide opt-out
    other_org = other_user.memberships.get().organization
    elsewhere = event_emit(organization=other_org, type="task.assigned", channels=["SMS"], recipients=[{"phone": "+14155550100"}],
                           data={"taskTitle": "Fix login"})
    assert NotificationDelivery.objects.get(notification_id=elsewhere.notifications[0][0]).status == DeliveryStatus.PENDING

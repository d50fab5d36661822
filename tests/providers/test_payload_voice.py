"""The VOICE field group (seed 004 §4.8) from the event to the calls Twilio's loopback peer
receives: language and voice, audio URL, the DTMF acknowledgement digit, recording, and
calling again after no answer or busy (max_retries, retry_delay)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from notifications.engine.delivery import deliver_batch
from notifications.enums import Channel, DeliveryStatus

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply
from .test_webhooks import GATHER_URL, SID, STATUS_URL, _signed_post

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CALLS = rf"/2010-04-01/Accounts/{SID}/Calls\.json"


@pytest.fixture
def twilio(peer, make_provider, user):
    user.phone = "+33612345678"
    user.save(update_fields=["phone"])
    server = peer(latency=LATENCY).on("POST", CALLS, lambda req: Reply(201, {"sid": f"CA{len(server.calls()):032d}", "status": "queued"}))
    make_provider("twilio_voice", config={"base_url": server.url, "from_number": "+14155550111"},
                  secrets={"account_sid": SID, "auth_token": "tw-auth-token-123"})
    return server


def test_language_voice_digit_and_recording_reach_twilio_and_the_digit_acknowledges(twilio, organization, user):
    payload_event_type()
    deliveries = trigger(organization=organization, user=user, channels=[Channel.VOICE], options={"VOICE": {
        "language": "fr-FR", "voice": "Polly.Celine", "require_acknowledgment": True, "acknowledgment_digit": "5",
        "record": True}})
    delivery = deliveries[Channel.VOICE]
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    form = twilio.calls()[-1].form
    assert form["Record"] == ["true"]
    twiml = ET.fromstring(form["Twiml"][0])
    say = twiml.find("Say")
    assert (say.get("language"), say.get("voice"), say.text) == ("fr-FR", "Polly.Celine", "Deploy apollo-7 finished.")
    gather = twiml.find("Gather")
    assert gather.get("numDigits") == "1" and "5" in gather.find("Say").text

    # pressing another key does nothing; the event's digit acknowledges
    _signed_post(Client(), GATHER_URL, {"AccountSid": SID, "CallSid": delivery.provider_message_id, "Digits": "1"})
    delivery.notification.refresh_from_db()
    assert delivery.notification.acknowledged_at is None
    _signed_post(Client(), GATHER_URL, {"AccountSid": SID, "CallSid": delivery.provider_message_id, "Digits": "5"})
    delivery.notification.refresh_from_db()
    assert delivery.notification.acknowledged_at is not None


def test_an_audio_url_is_played_instead_of_the_text(twilio, organization, user):
    payload_event_type()
    trigger(organization=organization, user=user, channels=[Channel.VOICE],
            options={"VOICE": {"audio_url": "https://cdn.example.com/alert.mp3"}})
    twiml = ET.fromstring(twilio.calls()[-1].form["Twiml"][0])
    assert twiml.find("Play").text == "https://cdn.example.com/alert.mp3" and twiml.find("Say") is None


def test_no_answer_calls_again_after_retry_delay_up_to_max_retries(twilio, organization, user):
    payload_event_type()
    deliveries = trigger(organization=organization, user=user, channels=[Channel.VOICE],
                         options={"VOICE": {"max_retries": 1, "retry_delay": 60}})
    delivery = deliveries[Channel.VOICE]
    first_call = delivery.provider_message_id

    before = timezone.now()
    assert _signed_post(Client(), STATUS_URL, {"AccountSid": SID, "CallSid": first_call, "CallStatus": "no-answer"}).status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert before + timedelta(seconds=50) <= delivery.next_retry_at <= timezone.now() + timedelta(seconds=70)
    assert "calling again in 60 s" in delivery.error

    delivery.next_retry_at = timezone.now() - timedelta(seconds=1)  # the delay passes
    delivery.save(update_fields=["next_retry_at"])
    deliver_batch(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert len(twilio.calls("POST", CALLS)) == 2 and delivery.status == DeliveryStatus.SENT
    assert delivery.provider_message_id != first_call

    # busy again: max_retries is spent, the delivery fails with the reason
    _signed_post(Client(), STATUS_URL, {"AccountSid": SID, "CallSid": delivery.provider_message_id, "CallStatus": "busy"})
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.error == "call busy"
    # a late report about the first call changes nothing
    _signed_post(Client(), STATUS_URL, {"AccountSid": SID, "CallSid": first_call, "CallStatus": "completed"})
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED

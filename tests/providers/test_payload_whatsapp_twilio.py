"""WhatsApp through Twilio keeps the 24-hour customer service window as Meta's does: from the
event to the request Twilio's loopback peer receives. Free text goes only after a customer's
message, reported by Twilio's signed inbound webhook, opened the window; outside it only an
approved Content template goes, anything else fails with the reason and no call."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from notifications.enums import Channel, DeliveryStatus
from providers.whatsapp.twilio import twilio_sender_id
from providers.whatsapp.window import window_close

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SID = "AC" + "7" * 32
TOKEN = "tw-wa-auth-token"
SENDER = "+14155550111"
CUSTOMER = "+33612345678"
INBOUND_URL = "https://troubadour.test/webhooks/twilio/whatsapp/inbound/"


@pytest.fixture
def twilio(peer, make_provider, user):
    user.phone = CUSTOMER
    user.save(update_fields=["phone"])
    window_close(business_number_id=twilio_sender_id(SENDER), customer=CUSTOMER)  # the cache outlives a test run
    server = peer(latency=LATENCY).on("POST", rf"/2010-04-01/Accounts/{SID}/Messages\.json", lambda req: Reply(201, {
        "sid": f"SM{len(server.calls()):032d}", "status": "queued", "price": None, "price_unit": "USD"}))
    make_provider("twilio_whatsapp", config={"base_url": server.url, "from_number": SENDER,
                                             "templates": {"deploy_done": "HX" + "d" * 32}},
                  secrets={"account_sid": SID, "auth_token": TOKEN})
    return server


def _inbound(*, message_sid: str, token: str = TOKEN, to: str = SENDER) -> int:
    params = {"MessageSid": message_sid, "SmsSid": message_sid, "AccountSid": SID, "From": f"whatsapp:{CUSTOMER}",
              "To": f"whatsapp:{to}", "Body": "hello", "NumMedia": "0", "WaId": CUSTOMER.lstrip("+"), "ProfileName": "Ada"}
    signature = RequestValidator(token).compute_signature(INBOUND_URL, params)
    return Client().post("/webhooks/twilio/whatsapp/inbound/", params, HTTP_X_TWILIO_SIGNATURE=signature).status_code


def test_free_text_waits_for_the_window_a_signed_inbound_message_opens(twilio, organization, user):
    payload_event_type()  # no WhatsApp template: free text
    delivery = trigger(organization=organization, user=user, channels=[Channel.WHATSAPP])[Channel.WHATSAPP]
    assert delivery.status == DeliveryStatus.FAILED
    assert "24-hour customer service window" in delivery.error and "Content SID" in delivery.error
    assert twilio.calls() == []

    # forged (another token) or addressed to a number that is not our sender: 403, no window
    assert _inbound(message_sid="SM" + "f" * 32, token="not-the-token") == 403
    assert trigger(organization=organization, user=user, channels=[Channel.WHATSAPP])[Channel.WHATSAPP].status == DeliveryStatus.FAILED
    assert twilio.calls() == []

    assert _inbound(message_sid="SM" + "1" * 32) == 200  # the customer writes: the window opens
    delivery = trigger(organization=organization, user=user, channels=[Channel.WHATSAPP], options={"WHATSAPP": {
        "media_url": "https://cdn.example.com/graph.png", "media_type": "image"}})[Channel.WHATSAPP]
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    (call,) = twilio.calls()
    assert call.form["To"] == [f"whatsapp:{CUSTOMER}"] and call.form["From"] == [f"whatsapp:{SENDER}"]
    assert call.form["Body"] == ["Deploy apollo-7 finished."]
    assert call.form["MediaUrl"] == ["https://cdn.example.com/graph.png"]
    assert "ContentSid" not in call.form

    # the window closes; the same signed request replayed does not reopen it
    window_close(business_number_id=twilio_sender_id(SENDER), customer=CUSTOMER)
    assert _inbound(message_sid="SM" + "1" * 32) == 200
    assert trigger(organization=organization, user=user, channels=[Channel.WHATSAPP])[Channel.WHATSAPP].status == DeliveryStatus.FAILED
    assert len(twilio.calls()) == 1


def test_outside_the_window_only_an_approved_content_template_goes(twilio, organization, user):
    payload_event_type(extra={Channel.WHATSAPP: {"template_name": "deploy_done", "body_parameters": ["{{ deploy.name }}", "{{ deploy.id }}"]}})
    delivery = trigger(organization=organization, user=user, channels=[Channel.WHATSAPP])[Channel.WHATSAPP]
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    (call,) = twilio.calls()
    assert call.form["ContentSid"] == ["HX" + "d" * 32] and "Body" not in call.form
    assert json.loads(call.form["ContentVariables"][0]) == {"1": "apollo-7", "2": "D-7"}

    # a template name Twilio knows no Content SID for is refused with the reason, before any call
    delivery = trigger(organization=organization, user=user, channels=[Channel.WHATSAPP],
                       options={"WHATSAPP": {"template_name": "never_approved"}})[Channel.WHATSAPP]
    assert delivery.status == DeliveryStatus.FAILED
    assert "never_approved" in delivery.error and "Content SID" in delivery.error
    assert len(twilio.calls()) == 1

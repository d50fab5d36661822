"""The SMS sender id and `unicode` options from the event (and the organization's channel
settings) to the requests Vonage's and Amazon SNS's loopback peers receive."""
from __future__ import annotations

import pytest

from notifications.enums import Channel, DeliveryStatus
from notifications.models import ChannelConfiguration

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TYPOGRAPHIC = "“Apollo” — phase 2…"  # curly quotes, an em dash, an ellipsis: UCS-2 as written


@pytest.fixture
def recipient(user):
    user.phone = "+33612345678"
    user.save(update_fields=["phone"])
    return user


@pytest.fixture
def vonage(peer, make_provider, tmp_path, monkeypatch, recipient):
    def answer(req):
        return Reply(200, {"message-count": "1", "messages": [{"to": "33612345678", "message-id": f"vg-{len(server.calls())}",
                                                               "status": "0", "message-price": "0.0450", "network": "20801"}]})

    server = peer(tls_dir=tmp_path / "tls", latency=LATENCY).on("POST", "/sms/json", answer)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
    make_provider("vonage_sms", config={"rest_host": server.host, "from_number": "Troubadour"},
                  secrets={"api_key": "vk-payload", "api_secret": "vonage-payload-secret"})
    return server


def _vonage_sent(server) -> dict[str, str]:
    call = server.calls("POST", "/sms/json")[-1]
    return call.json if call.header("Content-Type").startswith("application/json") else {k: v[0] for k, v in call.form.items()}


def test_vonage_gets_the_organizations_then_the_events_sender_and_the_unicode_choice(vonage, organization, recipient):
    payload_event_type()
    ChannelConfiguration.objects.create(organization=organization, channel=Channel.SMS, settings={"from": "ACME"})
    delivery = trigger(organization=organization, user=recipient, channels=[Channel.SMS], data={"deployName": TYPOGRAPHIC})[Channel.SMS]
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    sent = _vonage_sent(vonage)
    assert sent["from"] == "ACME" and sent["to"] == "33612345678"
    assert sent["type"] == "unicode" and sent["text"] == f"Deploy {TYPOGRAPHIC} finished."  # as written: UCS-2

    # unicode false: the look-alikes become their GSM-7 twins and it goes as plain text
    trigger(organization=organization, user=recipient, channels=[Channel.SMS], data={"deployName": TYPOGRAPHIC},
            options={"SMS": {"from": "+14155550999", "unicode": False}})
    sent = _vonage_sent(vonage)
    assert sent["from"] == "14155550999"
    assert sent["type"] == "text" and sent["text"] == 'Deploy "Apollo" - phase 2... finished.'

    # unicode true: UCS-2 even for text GSM-7 could carry
    trigger(organization=organization, user=recipient, channels=[Channel.SMS], options={"SMS": {"unicode": True}})
    sent = _vonage_sent(vonage)
    assert sent["type"] == "unicode" and sent["text"] == "Deploy apollo-7 finished." and sent["from"] == "ACME"
    assert len(vonage.calls()) == 3


@pytest.fixture
def sns(peer, make_provider, recipient):
    def answer(req):
        return Reply(200, '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
                          f"<MessageId>sns-{len(server.calls())}</MessageId></PublishResult><ResponseMetadata>"
                          "<RequestId>r1</RequestId></ResponseMetadata></PublishResponse>", {"Content-Type": "text/xml"})

    server = peer(latency=LATENCY).on("POST", "/", answer)
    make_provider("sns_sms", config={"endpoint_url": server.url, "region": "eu-west-1", "sender_id": "Troubadour"},
                  secrets={"access_key_id": "AKIDPAYLOAD", "secret_access_key": "sns-payload-secret"})
    return server


def _sns_attributes(server) -> tuple[str, dict[str, str]]:
    form = server.calls()[-1].form
    assert form["Action"] == ["Publish"] and form["PhoneNumber"] == ["+33612345678"]
    attributes = {}
    index = 1
    while f"MessageAttributes.entry.{index}.Name" in form:
        attributes[form[f"MessageAttributes.entry.{index}.Name"][0]] = form[f"MessageAttributes.entry.{index}.Value.StringValue"][0]
        index += 1
    return form["Message"][0], attributes


def test_sns_gets_the_sender_id_or_origination_number_and_the_unicode_choice(sns, organization, recipient):
    payload_event_type()
    delivery = trigger(organization=organization, user=recipient, channels=[Channel.SMS], data={"deployName": TYPOGRAPHIC})[Channel.SMS]
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    text, attributes = _sns_attributes(sns)
    assert attributes["AWS.SNS.SMS.SenderID"] == "Troubadour" and attributes["AWS.SNS.SMS.SMSType"] == "Transactional"
    assert text == f"Deploy {TYPOGRAPHIC} finished."

    ChannelConfiguration.objects.create(organization=organization, channel=Channel.SMS, settings={"from": "ACME", "unicode": False})
    trigger(organization=organization, user=recipient, channels=[Channel.SMS], data={"deployName": TYPOGRAPHIC})
    text, attributes = _sns_attributes(sns)
    assert attributes["AWS.SNS.SMS.SenderID"] == "ACME"
    assert text == 'Deploy "Apollo" - phase 2... finished.'

    # a number is an origination number, not a sender id
    trigger(organization=organization, user=recipient, channels=[Channel.SMS], options={"SMS": {"from": "+14155550999"}})
    _text, attributes = _sns_attributes(sns)
    assert attributes["AWS.MM.SMS.OriginationNumber"] == "+14155550999" and "AWS.SNS.SMS.SenderID" not in attributes

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from common.exceptions import ProviderPermanentError, ProviderTransientError
from notifications.enums import Channel
from providers.base import OutboundMessage
from providers.registry import registry

from .peers import Reply

SID = "AC0123456789abcdef0123456789abcdef"


def _meta(url: str):
    return registry.get("meta_whatsapp")(config={"base_url": url, "phone_number_id": "1055"},
                                         credentials={"access_token": "EAAG-meta-token"})


def test_meta_whatsapp_template_message(peer):
    graph = peer().on("POST", "/v21.0/1055/messages", Reply(200, {
        "messaging_product": "whatsapp", "contacts": [{"input": "33612345678", "wa_id": "33612345678"}],
        "messages": [{"id": "wamid.HBgL"}]}))
    message = OutboundMessage(channel=Channel.WHATSAPP, to="+33612345678", template_name="incident_alert", template_language="fr",
                              template_components=[{"type": "body", "parameters": [{"type": "text", "text": "DB down"}]}],
                              idempotency_key="9")
    result = _meta(graph.url).send(message)

    (call,) = graph.calls()
    assert call.header("Authorization") == "Bearer EAAG-meta-token"
    assert call.json == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "33612345678", "type": "template",
                         "template": {"name": "incident_alert", "language": {"code": "fr"},
                                      "components": [{"type": "body", "parameters": [{"type": "text", "text": "DB down"}]}]},
                         "biz_opaque_callback_data": "9"}
    assert result.provider_message_id == "wamid.HBgL"


def test_meta_whatsapp_free_text_and_the_24h_window_error(peer):
    from providers.whatsapp.window import window_close, window_record

    window_close(business_number_id="1055", customer="33612345678")  # the cache outlives a test run
    graph = peer().on("POST", "/v21.0/1055/messages", Reply(400, {"error": {"code": 131047, "message": "Re-engagement message"}}))
    text = OutboundMessage(channel=Channel.WHATSAPP, to="+33612345678", text="Are you there?")
    with pytest.raises(ProviderPermanentError) as err:  # no message from them: refused before any call
        _meta(graph.url).send(text)
    assert err.value.code == "window_closed" and graph.calls() == []
    # they wrote (as far as we know): Meta still has the last word
    window_record(business_number_id="1055", customer="33612345678")
    with pytest.raises(ProviderPermanentError) as err:
        _meta(graph.url).send(text)
    assert "131047" in str(err.value.detail)
    assert graph.calls()[0].json["text"] == {"preview_url": False, "body": "Are you there?"}

    graph.on("POST", "/v21.0/1055/messages", Reply(429, {"error": {"code": 130429, "message": "Rate limit hit"}}))
    with pytest.raises(ProviderTransientError):
        _meta(graph.url).send(text)


def test_twilio_whatsapp_uses_the_whatsapp_address_scheme(peer):
    twilio = peer().on("POST", rf"/2010-04-01/Accounts/{SID}/Messages\.json",
                       lambda req: Reply(201, {"sid": "SM" + "b" * 32, "status": "queued", "price": None, "price_unit": "USD"}))
    provider = registry.get("twilio_whatsapp")(config={"base_url": twilio.url, "from_number": "+14155550111", "templates": {"incident_alert": "HX123"}},
                                               credentials={"account_sid": SID, "auth_token": "tw-token"})
    provider.send(OutboundMessage(channel=Channel.WHATSAPP, to="+33612345678", template_name="incident_alert",
                                  template_components=[{"type": "body", "parameters": [{"type": "text", "text": "DB down"}]}]))
    form = twilio.calls()[0].form
    assert form["To"] == ["whatsapp:+33612345678"] and form["From"] == ["whatsapp:+14155550111"]
    assert form["ContentSid"] == ["HX123"] and form["ContentVariables"] == ['{"1": "DB down"}']


def test_twilio_voice_call_with_say_and_press_one_gather(peer):
    twilio = peer().on("POST", rf"/2010-04-01/Accounts/{SID}/Calls\.json",
                       lambda req: Reply(201, {"sid": "CA" + "c" * 32, "status": "queued", "price": None}))
    provider = registry.get("twilio_voice")(config={"base_url": twilio.url, "from_number": "+14155550111"},
                                            credentials={"account_sid": SID, "auth_token": "tw-token"})
    result = provider.send(OutboundMessage(channel=Channel.VOICE, to="+33612345678", text="La base de données est en panne.",
                                           locale="fr", require_acknowledgment=True, idempotency_key="77"))

    form = twilio.calls()[0].form
    assert form["To"] == ["+33612345678"] and form["StatusCallback"] == ["https://troubadour.test/webhooks/twilio/status/"]
    twiml = ET.fromstring(form["Twiml"][0])
    say = twiml.find("Say")
    assert say.text == "La base de données est en panne." and say.get("language") == "fr-FR"
    gather = twiml.find("Gather")
    assert gather.get("action") == "https://troubadour.test/webhooks/twilio/voice/gather/" and gather.get("numDigits") == "1"
    assert "1" in gather.find("Say").text
    assert result.provider_message_id == "CA" + "c" * 32


def test_twilio_voice_can_play_a_recording(peer):
    twilio = peer().on("POST", rf"/2010-04-01/Accounts/{SID}/Calls\.json", lambda req: Reply(201, {"sid": "CA" + "d" * 32, "status": "queued"}))
    provider = registry.get("twilio_voice")(config={"base_url": twilio.url, "from_number": "+14155550111"},
                                            credentials={"account_sid": SID, "auth_token": "tw-token"})
    provider.send(OutboundMessage(channel=Channel.VOICE, to="+33612345678", audio_url="https://cdn.troubadour.test/alert.mp3"))
    twiml = ET.fromstring(twilio.calls()[0].form["Twiml"][0])
    assert twiml.find("Play").text == "https://cdn.troubadour.test/alert.mp3" and twiml.find("Gather") is None

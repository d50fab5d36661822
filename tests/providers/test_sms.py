from __future__ import annotations

from decimal import Decimal

import pytest

from common.exceptions import ProviderPermanentError, ProviderTransientError
from notifications.enums import Channel
from providers.base import OutboundMessage
from providers.registry import registry

from .peers import Reply

SID = "AC0123456789abcdef0123456789abcdef"
MESSAGES = rf"/2010-04-01/Accounts/{SID}/Messages\.json"


def twilio_message(form: dict, *, price: str | None = "-0.01580", segments: str = "2") -> dict:
    return {"sid": "SM" + "a" * 32, "account_sid": SID, "to": form["To"][0], "from": form.get("From", [""])[0],
            "body": form["Body"][0], "status": "queued", "num_segments": segments, "price": price, "price_unit": "USD",
            "date_created": "Thu, 01 Jan 2026 00:00:00 +0000"}


def _sms(text: str = "Your code is 1234", to: str = "+14155550100") -> OutboundMessage:
    return OutboundMessage(channel=Channel.SMS, to=to, text=text, idempotency_key="7")


def _twilio(url: str):
    return registry.get("twilio_sms")(config={"base_url": url, "from_number": "+14155550111"},
                                      credentials={"account_sid": SID, "auth_token": "tw-secret-token"})


def test_twilio_sms_posts_the_message_and_records_its_cost(peer):
    twilio = peer().on("POST", MESSAGES, lambda req: Reply(201, twilio_message(req.form)))
    result = _twilio(twilio.url).send(_sms("Héllo ✓ " * 10))

    (call,) = twilio.calls("POST", MESSAGES)
    form = call.form
    assert form["To"] == ["+14155550100"] and form["From"] == ["+14155550111"]
    assert form["Body"] == ["Héllo ✓ " * 10]
    assert form["StatusCallback"] == ["https://troubadour.test/webhooks/twilio/status/"]
    assert call.header("Authorization").startswith("Basic ")
    assert result.provider_message_id == "SM" + "a" * 32
    assert (result.cost_amount, result.cost_currency, result.segments) == (Decimal("0.01580"), "USD", 2)


@pytest.mark.parametrize("status, code, error", [
    (400, 21211, ProviderPermanentError),  # invalid To number
    (401, 20003, ProviderPermanentError),  # authentication
    (429, 20429, ProviderTransientError),
    (503, None, ProviderTransientError),
])
def test_twilio_errors(peer, status, code, error):
    twilio = peer().on("POST", MESSAGES, Reply(status, {"code": code, "message": "refused", "status": status}))
    with pytest.raises(error):
        _twilio(twilio.url).send(_sms())


def test_invalid_number_fails_before_any_call(peer):
    twilio = peer().on("POST", MESSAGES, lambda req: Reply(201, twilio_message(req.form)))
    with pytest.raises(ProviderPermanentError):
        _twilio(twilio.url).send(_sms(to="0612345678"))
    assert twilio.calls() == []


def test_vonage_sms_over_tls_sends_unicode_and_sums_the_parts_price(peer, tmp_path, monkeypatch):
    def answer(req):
        return Reply(200, {"message-count": "2", "messages": [
            {"to": "33612345678", "message-id": "vg-1", "status": "0", "remaining-balance": "9.5", "message-price": "0.0450", "network": "20801"},
            {"to": "33612345678", "message-id": "vg-2", "status": "0", "remaining-balance": "9.4", "message-price": "0.0450", "network": "20801"},
        ]})

    vonage = peer(tls_dir=tmp_path / "tls").on("POST", "/sms/json", answer)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vonage.ca_path))
    provider = registry.get("vonage_sms")(config={"rest_host": vonage.host, "from_number": "Troubadour"},
                                          credentials={"api_key": "vk", "api_secret": "vonage-secret"})
    result = provider.send(_sms("Réunion à 15h — 🎉 " * 5, to="+33612345678"))

    (call,) = vonage.calls("POST", "/sms/json")
    sent = call.json if call.header("Content-Type").startswith("application/json") else {k: v[0] for k, v in call.form.items()}
    assert sent["to"] == "33612345678" and sent["type"] == "unicode" and sent["client-ref"] == "7"
    assert result.provider_message_id == "vg-1" and result.segments == 2
    assert result.cost_amount == Decimal("0.0900") and result.cost_currency == "EUR"


@pytest.mark.parametrize("status, error", [("1", ProviderTransientError), ("3", ProviderPermanentError), ("4", ProviderPermanentError)])
def test_vonage_status_codes(peer, tmp_path, monkeypatch, status, error):
    vonage = peer(tls_dir=tmp_path / "tls").on("POST", "/sms/json", Reply(200, {"message-count": "1", "messages": [
        {"status": status, "error-text": "refused"}]}))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vonage.ca_path))
    provider = registry.get("vonage_sms")(config={"rest_host": vonage.host, "from_number": "Troubadour"},
                                          credentials={"api_key": "vk", "api_secret": "vonage-secret"})
    with pytest.raises(error):
        provider.send(_sms())


def test_sns_publish_through_an_endpoint_url(peer):
    def answer(req):
        assert req.form["Action"] == ["Publish"] and req.form["PhoneNumber"] == ["+14155550100"]
        return Reply(200, '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
                          "<MessageId>sns-123</MessageId></PublishResult><ResponseMetadata><RequestId>r1</RequestId>"
                          "</ResponseMetadata></PublishResponse>", {"Content-Type": "text/xml"})

    sns = peer().on("POST", "/", answer)
    provider = registry.get("sns_sms")(config={"endpoint_url": sns.url, "region": "eu-west-1"},
                                       credentials={"access_key_id": "AKIDTEST", "secret_access_key": "sns-secret"})
    result = provider.send(_sms())
    assert result.provider_message_id == "sns-123"
    assert "AWS4-HMAC-SHA256" in sns.calls()[0].header("Authorization")
